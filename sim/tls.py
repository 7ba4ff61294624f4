"""TLS for the simulator (`tikvops sim --tls-dir DIR`), like a TLS-enabled cluster.

PD's port and every store's `/metrics` port then speak HTTPS with the server certificate in
`DIR` and require a client certificate signed by the CA in `DIR`, as PD and TiKV do with
`security.cacert-path`/`cert-path`/`key-path` set. The directory holds, in PEM:

- `ca.pem`: the CA that signs client certificates (and, usually, the server's);
- `server.pem` and `server-key.pem`: the server certificate (naming the address clients
  use, e.g. 127.0.0.1) and its key.

Tests make throwaway certificates with `trustme`; no key is committed.
"""

from __future__ import annotations

import ssl
from pathlib import Path

CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"

__all__ = ["CA_FILE", "CERT_FILE", "KEY_FILE", "TLSDirError", "server_context"]


class TLSDirError(ValueError):
    """The TLS directory cannot be used; the message says which file and why."""


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """A server context that requires client certificates signed by `tls_dir/ca.pem`."""
    paths = {name: tls_dir / name for name in (CA_FILE, CERT_FILE, KEY_FILE)}
    for path in paths.values():
        if not path.is_file():
            raise TLSDirError(
                f"{path} is missing: --tls-dir needs {CA_FILE}, {CERT_FILE} and {KEY_FILE}"
            )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(paths[CERT_FILE]), str(paths[KEY_FILE]))
        context.load_verify_locations(cafile=str(paths[CA_FILE]))
    except (OSError, ssl.SSLError) as exc:
        raise TLSDirError(f"cannot use the certificates in {tls_dir}: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context
