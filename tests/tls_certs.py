"""Throwaway certificate authorities for TLS tests (made by `trustme` in a temporary directory;
no key is ever committed).

`make_certs(root)` writes, under `root`:

- `server/`: the simulator's `--tls-dir` (cluster CA, a server certificate for 127.0.0.1 and
  localhost, its key);
- `ca.pem`, `client.pem`, `client-key.pem`: what tikvops is given (pd-ctl's three files);
- `other-ca.pem`, `other-client.pem`, `other-client-key.pem`: a foreign CA and a client
  certificate it signed;
- `expired/`, `wrong-name/`: `--tls-dir`s whose server certificate has expired, or names only
  `pd.example`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import trustme

from sim import tls as sim_tls


@dataclass(frozen=True)
class Certs:
    root: Path
    server_dir: Path
    expired_dir: Path
    wrong_name_dir: Path
    ca: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path
    authority: trustme.CA

    def env(self) -> dict[str, str]:
        """The environment for tikvops with the right files."""
        return {
            "TIKVOPS_TLS_CA": str(self.ca),
            "TIKVOPS_TLS_CERT": str(self.client_cert),
            "TIKVOPS_TLS_KEY": str(self.client_key),
        }


def _write_leaf(leaf: trustme.LeafCert, cert: Path, key: Path) -> None:
    leaf.private_key_pem.write_to_path(str(key))
    with cert.open("wb") as out:
        for blob in leaf.cert_chain_pems:
            out.write(blob.bytes())


def server_dir(directory: Path, ca: trustme.CA, leaf: trustme.LeafCert) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(directory / sim_tls.CA_FILE))
    _write_leaf(leaf, directory / sim_tls.CERT_FILE, directory / sim_tls.KEY_FILE)
    return directory


def make_certs(root: Path) -> Certs:
    ca = trustme.CA()
    other = trustme.CA()
    root.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    other.cert_pem.write_to_path(str(root / "other-ca.pem"))
    _write_leaf(
        ca.issue_cert("tikvops.client", common_name="tikvops"),
        root / "client.pem",
        root / "client-key.pem",
    )
    _write_leaf(
        other.issue_cert("intruder.client", common_name="intruder"),
        root / "other-client.pem",
        root / "other-client-key.pem",
    )
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return Certs(
        root=root,
        server_dir=server_dir(root / "server", ca, ca.issue_cert("127.0.0.1", "localhost")),
        expired_dir=server_dir(
            root / "expired",
            ca,
            ca.issue_cert("127.0.0.1", not_before=past - dt.timedelta(days=30), not_after=past),
        ),
        wrong_name_dir=server_dir(root / "wrong-name", ca, ca.issue_cert("pd.example")),
        ca=root / "ca.pem",
        client_cert=root / "client.pem",
        client_key=root / "client-key.pem",
        other_ca=root / "other-ca.pem",
        other_client_cert=root / "other-client.pem",
        other_client_key=root / "other-client-key.pem",
        authority=ca,
    )
