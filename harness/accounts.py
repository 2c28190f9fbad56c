"""The members and tokens of the emulator's test config, written to disk like a user's would be.

`default_config()` is the config the tests start the registry with; bench/ writes its own configs with the
same members and tokens, so `RegistryProcess.api` and `.token` work against either.
"""
from __future__ import annotations

TOKENS = {
    "pipelines": "pipelines-token-6f1c",
    "reader": "reader-token-93ab",
    "boss": "boss-token-27de",
    "outsider": "outsider-token-c0ff",
    "dev@example.com": "dev-api-token-write-7b31",  # an API token scoped read and write
}
# An API token of the same account scoped read:package:bitbucket only (the account has write on web-app).
READ_SCOPED_TOKEN = "dev-api-token-read-42d9"
EMAIL = "dev@example.com"


def default_config() -> dict:
    return {
        "workspaces": {
            "acme": {
                "repositories": {"web-app": {"project": "WEB"}, "tools": {"project": "OPS"}},
                "packages": {"my-container-app": "web-app", "other-app": "web-app", "tool-image": "tools"},
                "members": {
                    "pipelines": {"token": TOKENS["pipelines"], "roles": {"web-app": "write", "tools": "write"}},
                    "reader": {"token": TOKENS["reader"], "roles": {"web-app": "read"}},
                    "boss": {"token": TOKENS["boss"], "roles": {"web-app": "admin", "tools": "admin"}},
                    "outsider": {"token": TOKENS["outsider"], "roles": {}},
                    EMAIL: {"roles": {"web-app": "write"}, "api_tokens": [
                        {"token": READ_SCOPED_TOKEN, "scopes": ["read:package:bitbucket"]},
                        {"token": TOKENS[EMAIL], "scopes": ["read:package:bitbucket", "write:package:bitbucket"]},
                    ]},
                },
            },
            "globex": {
                "repositories": {"site": {"project": "SITE"}},
                "packages": {"site-image": "site"},
                "members": {"pipelines": {"token": "globex-token-11aa", "roles": {"site": "write"}}},
            },
        },
        "limits": {"max_layer_bytes": 64 * 1024 * 1024, "upload_timeout_seconds": 420},
        "gc": {"grace_seconds": 0},
    }
