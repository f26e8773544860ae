"""A compatibility shim for functions deployed by SCAR with faas-supervisor's handler.

SCAR writes into every function's zip a file ``<name>.py`` that imports
``faassupervisor.supervisor`` and calls ``main(event=event, context=context)``, and sets the
function's handler to ``<name>.lambda_handler``.  This package gives that file what it
imports, so that such a function runs on this project's layer unchanged.  It holds no
supervisor of its own: ``faassupervisor.supervisor.main`` is the handler
``handlers.lambda_handler.handler``.
"""
