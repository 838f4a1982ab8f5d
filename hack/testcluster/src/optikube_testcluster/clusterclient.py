"""Talking to a running test cluster as its admin: the real kubectl, the Python client, CRDs,
namespaces and service-account tokens from the TokenRequest API.

`ClusterClient` is what `ControlPlane` offers its tests once the processes run; it needs only the
admin kubeconfig, the certificates' layout and the folder holding kubectl.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optikube_testcluster.kubeconfig import render_token_kubeconfig, write_kubeconfig
from optikube_testcluster.layout import ADMIN, Layout
from optikube_testcluster.probes import wait_until


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}"


class ClusterClient:
    """The admin's view of a cluster: subclasses say where its kubeconfig, layout and binaries are."""

    @property
    def bin_dir(self) -> Path:
        raise NotImplementedError

    @property
    def layout(self) -> Layout:
        raise NotImplementedError

    @property
    def kubeconfig(self) -> Path:
        raise NotImplementedError

    @property
    def server(self) -> str:
        raise NotImplementedError

    # ---- clients --------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Runs the real kubectl as the admin; raises KubectlError (with stderr) when check fails."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def install_crds(self, directory: Path, timeout: float = 60.0) -> None:
        """Applies the CRDs of a folder and waits until the apiserver serves them (Established).
        `kubectl wait` right after the create can fail while a CRD has no conditions yet, so the
        wait is retried until the deadline."""
        self.kubectl("apply", "-f", str(directory))
        crds = self.kubectl("get", "-f", str(directory), "-o", "name").stdout.split()
        wait_until(
            f"{', '.join(crds)} Established",
            lambda: (
                self.kubectl(
                    "wait", "--for=condition=Established", "--timeout=10s", *crds, check=False
                ).returncode
                == 0
            ),
            time.monotonic() + timeout,
            interval=0.5,
        )
        # Established is not served yet: a new resource's watch cache answers 429 ("storage is
        # (re)initializing", come back in 1 s) for a moment, which would land in whatever a test
        # or a benchmark times first.
        wait_until(
            f"{', '.join(crds)} served",
            lambda: all(
                self.kubectl(
                    "get", crd.split("/", 1)[1], "-A", "--request-timeout=5s", check=False
                ).returncode
                == 0
                for crd in crds
            ),
            time.monotonic() + timeout,
            interval=0.2,
        )

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient authenticated as the admin."""
        from kubernetes import client

        layout = self.layout
        configuration = client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = str(layout.ca_cert)
        configuration.cert_file = str(layout.client_cert(ADMIN))
        configuration.key_file = str(layout.client_key(ADMIN))
        return client.ApiClient(configuration)

    def create_namespace(self, name: str, timeout: float = 30.0) -> str:
        """Creates a namespace and waits for its default ServiceAccount, which pods need."""
        from kubernetes import client

        with self.api_client() as api:
            core: Any = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": name}})
            wait_until(
                f"the default ServiceAccount of {name}",
                lambda: has_default_service_account(core, name),
                time.monotonic() + timeout,
                interval=0.1,
            )
        return name

    def service_account_token(
        self, namespace: str, name: str, audiences: Sequence[str] = (), expiration_seconds: int = 3600
    ) -> str:
        """A token for an existing ServiceAccount, from the TokenRequest API (as a kubelet gets one)."""
        from kubernetes import client

        request = {"spec": {"audiences": list(audiences), "expirationSeconds": expiration_seconds}}
        with self.api_client() as api:
            core: Any = client.CoreV1Api(api)
            response = core.create_namespaced_service_account_token(name, namespace, request)
        return str(response.status.token)

    def service_account_kubeconfig(self, namespace: str, name: str, expiration_seconds: int = 3600) -> Path:
        """A kubeconfig acting as namespace/name, to run code (an operator) with only its RBAC."""
        token = self.service_account_token(namespace, name, expiration_seconds=expiration_seconds)
        user = f"system:serviceaccount:{namespace}:{name}"
        document = render_token_kubeconfig(self.server, self.layout.ca_cert.read_bytes(), token, user)
        return write_kubeconfig(self.layout.root / f"sa-{namespace}-{name}.kubeconfig", document)


def has_default_service_account(core: Any, namespace: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
