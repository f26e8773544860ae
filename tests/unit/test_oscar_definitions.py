"""OSCAR's function definitions validate, with each storage provider type.

OSCAR writes ``/oscar/config/function_config.yaml`` with ``Service.ToYAML`` (grycap/oscar
``pkg/types/service.go``; ``pkg/backends/k8s.go`` ``createServiceConfigMap`` clears
``script`` first, and ``script`` is ``omitempty``).  goccy/go-yaml writes the fields in the
struct's order under their ``json`` names, every field without ``omitempty`` even when
empty (``""``, ``[]``, ``{}``), map keys sorted: the shape ``TestToYAML`` in
``pkg/types/service_test.go`` pins.  The providers are those of ``pkg/types/storage.go``;
``pkg/handlers/create.go`` (``checkValues``) sets ``memory`` 256Mi, ``cpu`` 0.2, a
``log_level`` among NOTSET, DEBUG, INFO, WARNING, ERROR and CRITICAL (INFO otherwise) and
adds ``minio.default`` with the cluster's endpoint, verify and region and the keys
``hidden`` (``pkg/types/config.go``: MINIO_ENDPOINT https://minio-service.minio:9000,
MINIO_REGION us-east-1, MINIO_TLS_VERIFY true by default).
"""

from __future__ import annotations

import pytest

from supervisor.config import DEFAULT_MINIO_ENDPOINT, FunctionConfig, parse_config
from supervisor.errors import ConfigError

_SERVICE = """\
name: {name}
cluster_id: oscar-cluster
memory: 256Mi
cpu: "0.2"
total_memory: ""
total_cpu: ""
ephemeral_storage_request: ""
enable_gpu: false
enable_sgx: false
image_prefetch: false
synchronous:
  min_scale: 0
  max_scale: 0
log_level: {log_level}
image: ghcr.io/grycap/imagemagick
alpine: false
token: 5a9f0c1d3e7b2a4c6d8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e
file_stage_in: false
input:
- storage_provider: minio.default
  path: {name}/input
output:
{output}expose:
  min_scale: 0
  max_scale: 0
  cpu_threshold: 0
  rewrite_target: false
  default_command: false
  set_auth: false
  health_path: ""
environment:
  variables:
    GREETING: hello
  secrets: {{}}
annotations: {{}}
vo: ""
labels:
  oscar.grycap/user-service: "true"
  oscar_service: {name}
  applicationId: {name}
  queue: root.oscar-queue.{name}
storage_providers:
{providers}owner: cluster_admin
interlink_node_name: ""
visibility: private
allowed_users: []
isolation_level: SERVICE
bucket_list: []
mount:
  storage_provider: ""
  path: ""
"""

_DEFAULT_MINIO = """\
  minio:
    default:
      endpoint: https://minio-service.minio:9000
      verify: true
      access_key: hidden
      secret_key: hidden
      region: us-east-1
"""

_PROVIDERS = {
    "minio": """\
  minio:
    default:
      endpoint: https://minio-service.minio:9000
      verify: true
      access_key: hidden
      secret_key: hidden
      region: us-east-1
    lab:
      endpoint: https://minio.lab.example.org
      verify: false
      access_key: lab-access-key
      secret_key: lab-secret-key
      region: ""
""",
    "s3": _DEFAULT_MINIO
    + """\
  s3:
    lab:
      access_key: AKIAEXAMPLEEXAMPLE
      secret_key: s3-secret-key-value
      region: eu-west-1
""",
    "onedata": _DEFAULT_MINIO
    + """\
  onedata:
    lab:
      oneprovider_host: oneprovider.example.org
      token: onedata-token-value
      space: my-space
""",
    "webdav": _DEFAULT_MINIO
    + """\
  webdav:
    lab:
      hostname: dcache.example.org:2880
      login: dcache-user
      password: dcache-password-value
""",
    "rucio": _DEFAULT_MINIO
    + """\
  rucio:
    lab:
      host: rucio.example.org
      account: rucio-account
      rse: RSE-DISK
      refresh_token: rucio-refresh-token
      auth_host: rucio-auth.example.org
      oidc_audience: rucio
      token_endpoint: https://iam.example.org/token
""",
}

_SECRETS = {
    "minio": "lab-secret-key",
    "s3": "s3-secret-key-value",
    "onedata": "onedata-token-value",
    "webdav": "dcache-password-value",
    "rucio": "rucio-refresh-token",
}


def _oscar_yaml(kind: str = "minio", *, log_level: str = "INFO", name: str = "imagemagick") -> str:
    output = (
        f"- storage_provider: {kind}.lab\n  path: {name}/output\n  suffix:\n  - .png\n"
        f"- storage_provider: minio\n  path: {name}/all\n"
    )
    return _SERVICE.format(
        name=name, log_level=log_level, output=output, providers=_PROVIDERS[kind]
    )


@pytest.mark.parametrize("kind", sorted(_PROVIDERS))
def test_an_oscar_definition_validates_with_each_provider_type(kind: str) -> None:
    config = parse_config(
        _oscar_yaml(kind), origin="/oscar/config/function_config.yaml", strict=True
    )

    assert config.warnings == ()
    assert config.name == "imagemagick"
    assert config.log_level == "INFO"
    assert [item.storage_provider for item in config.input] == ["minio.default"]
    assert [(item.provider_type, item.provider_id) for item in config.output] == [
        (kind, "lab"),
        ("minio", "default"),
    ]
    assert config.output[0].suffix == (".png",)
    assert list(getattr(config.storage_providers, kind)) == (
        ["default", "lab"] if kind == "minio" else ["lab"]
    )
    default = config.storage_providers.minio["default"]
    assert (default.endpoint, default.verify, default.region) == (
        "https://minio-service.minio:9000",
        True,
        "us-east-1",
    )
    secrets = config.storage_providers.secrets()
    assert _SECRETS[kind] in secrets
    assert "hidden" not in secrets


def test_the_providers_read_as_oscar_and_faas_supervisor_read_them() -> None:
    providers = {
        kind: getattr(parse_config(_oscar_yaml(kind)).storage_providers, kind)["lab"]
        for kind in _PROVIDERS
    }

    minio = providers["minio"]
    assert (minio.endpoint, minio.verify, minio.region) == (
        "https://minio.lab.example.org",
        False,
        "us-east-1",
    )
    s3 = providers["s3"]
    assert s3.region == "eu-west-1"
    assert s3.secret_key is not None
    assert s3.secret_key.get_secret_value() == "s3-secret-key-value"
    webdav = providers["webdav"]
    assert (webdav.url, webdav.login) == ("https://dcache.example.org:2880", "dcache-user")
    onedata = providers["onedata"]
    assert (onedata.oneprovider_host, onedata.space) == ("oneprovider.example.org", "my-space")
    assert providers["rucio"].rse == "RSE-DISK"


@pytest.mark.parametrize(
    ("written", "level"),
    [
        ("NOTSET", "DEBUG"),
        ("DEBUG", "DEBUG"),
        ("INFO", "INFO"),
        ("WARNING", "WARNING"),
        ("ERROR", "ERROR"),
        ("CRITICAL", "CRITICAL"),
        ('""', "INFO"),
        ("notset", "DEBUG"),
        ("warn", "WARNING"),
        ("FATAL", "CRITICAL"),
        ("null", "INFO"),
    ],
)
def test_every_log_level_oscar_writes_maps_to_a_level(written: str, level: str) -> None:
    assert parse_config(_oscar_yaml(log_level=written)).log_level == level


def test_an_unknown_log_level_names_the_key_and_the_value() -> None:
    with pytest.raises(ConfigError, match=r"log_level: 'LOUD' is invalid"):
        parse_config(_oscar_yaml(log_level="loud"))


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("{}", (DEFAULT_MINIO_ENDPOINT, True, "us-east-1")),
        ('{endpoint: "", verify: "", region: ""}', (DEFAULT_MINIO_ENDPOINT, True, "us-east-1")),
        ("{verify: false, region: eu-south-1}", (DEFAULT_MINIO_ENDPOINT, False, "eu-south-1")),
        ("{endpoint: http://minio:9000}", ("http://minio:9000", True, "us-east-1")),
        ("", (DEFAULT_MINIO_ENDPOINT, True, "us-east-1")),
    ],
)
def test_a_minio_provider_without_keys_gets_the_defaults(
    settings: str, expected: tuple[str, bool, str]
) -> None:
    config = parse_config(
        "name: f\noutput:\n- {storage_provider: minio.x, path: b/out}\n"
        f"storage_providers:\n  minio:\n    x: {settings}\n"
    )
    provider = config.storage_providers.minio["x"]
    assert (provider.endpoint, provider.verify, provider.region) == expected


def test_blank_s3_keys_are_absent_so_that_boto3_finds_its_own() -> None:
    config = parse_config(
        'name: f\nstorage_providers:\n  s3:\n    x: {access_key: "", secret_key: "", region: ""}\n'
    )
    provider = config.storage_providers.s3["x"]
    assert (provider.access_key, provider.secret_key, provider.region) == (None, None, None)
    assert config.storage_providers.secrets() == ()


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("MinIO.default", "minio.default"),
        ("WEBDAV.dcache", "webdav.dcache"),
        ("minio.my.provider", "minio.my.provider"),
        ("onedata", "onedata"),
    ],
)
def test_a_provider_type_is_read_whatever_its_case(written: str, kept: str) -> None:
    config = parse_config(f"name: f\ninput:\n- {{storage_provider: {written}, path: b/in}}\n")
    assert config.input[0].storage_provider == kept


def test_an_unknown_provider_type_names_the_key_and_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("name: f\noutput:\n- {storage_provider: ftp.x, path: b/out}\n")
    assert "output[0].storage_provider: 'ftp.x' is invalid" in str(caught.value)
    assert "webdav, onedata, rucio" in str(caught.value)


@pytest.mark.parametrize(
    ("hostname", "url"),
    [
        ("dcache.example.org", "https://dcache.example.org"),
        ("dcache.example.org:2880/pnfs/data/", "https://dcache.example.org:2880/pnfs/data"),
        ("http://127.0.0.1:8080/dav", "http://127.0.0.1:8080/dav"),
        ("HTTPS://dav.example.org", "https://dav.example.org"),
    ],
)
def test_a_webdav_hostname_is_reached_over_https_unless_it_says_otherwise(
    hostname: str, url: str
) -> None:
    config = parse_config(
        f"name: f\nstorage_providers:\n  webdav:\n    d: {{hostname: '{hostname}'}}\n"
    )
    provider = config.storage_providers.webdav["d"]
    assert provider.url == url
    assert (provider.login, provider.password) == (None, None)


@pytest.mark.parametrize(
    "hostname", ["ftp://dav.example.org", "user:pw-value@dav.example.org", "/only/a/path", ""]
)
def test_a_bad_webdav_hostname_is_refused_without_showing_it(hostname: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "name: f\nstorage_providers:\n  webdav:\n"
            f"    d: {{hostname: '{hostname}', password: pw-value}}\n"
        )
    message = str(caught.value)
    assert "storage_providers.webdav.d.hostname" in message
    assert "pw-value" not in message


def test_a_webdav_provider_needs_a_hostname() -> None:
    with pytest.raises(ConfigError, match=r"storage_providers.webdav.d.hostname: missing"):
        parse_config("name: f\nstorage_providers:\n  webdav:\n    d: {login: me}\n")


def test_an_empty_provider_type_is_no_provider() -> None:
    config = parse_config("name: f\nstorage_providers:\n  onedata:\n  webdav: {}\n")
    assert (config.storage_providers.onedata, config.storage_providers.webdav) == ({}, {})


def test_the_definition_keeps_oscar_top_level_keys_out_of_the_script() -> None:
    config: FunctionConfig = parse_config(_oscar_yaml("webdav"))
    # OSCAR sets environment.variables on the container itself; the definition's
    # ``container.environment`` is what the supervisor passes on, and OSCAR writes none.
    assert config.container.environment.variables == {}
    assert "dcache-password-value" in config.storage_providers.secrets()
