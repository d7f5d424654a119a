"""Real servers for the tests, started on loopback and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FERRETDB_BIN = Path(os.environ.get("JOBGATE_FERRETDB_BIN", ROOT / ".test-services/bin/ferretdb"))


def fresh_database(server_url: str) -> str:
    """A new, empty database's URL on the MongoDB server at `server_url`."""
    return f"{server_url}/jobgate_test_{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class LoopbackServer:
    """A server process on a loopback port, stopped by its PID."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _run(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the server dies mid-whatever, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


class FerretDB(LoopbackServer):
    """A FerretDB v1 server (SQLite handler) on a loopback port, with its data in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, sqlite_options: str = "") -> None:
        super().__init__(port)
        self.data_dir = data_dir
        self.sqlite_options = sqlite_options  # e.g. "_pragma=busy_timeout(1000)"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> FerretDB:
        if not FERRETDB_BIN.exists():
            raise RuntimeError(
                f"{FERRETDB_BIN} is missing: run scripts/test, which builds FerretDB, or set "
                "MONGODB_URL to a MongoDB server"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run(
            [
                str(FERRETDB_BIN),
                "--handler=sqlite",
                f"--sqlite-url=file:{self.data_dir}/"
                + (f"?{self.sqlite_options}" if self.sqlite_options else ""),
                f"--listen-addr=127.0.0.1:{self.port}",
                "--telemetry=disable",
                "--debug-addr=-",
                f"--state-dir={self.data_dir}",
            ]
        )
        return self


class RedisServer(LoopbackServer):
    """A throwaway redis-server on a loopback port (no persistence)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: run scripts/test, which installs it")
        self._run(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
        )
        return self


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: jobgate
    static_configs:
      - targets: ["{target}"]
"""


class PrometheusServer(LoopbackServer):
    """Debian's Prometheus on a loopback port, scraping `target` (host:port) every second,
    its data in `folder`."""

    def __init__(self, folder: Path, target: str) -> None:
        super().__init__()
        self.folder = folder
        self.target = target

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is missing: run scripts/test, which installs it")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(PROMETHEUS_CONFIG.format(target=self.target))
        self._run(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ]
        )
        return self


SLURM_CONF_TEMPLATE = """\
# A throwaway single-node Slurm for jobgate's tests (after ../shared/design/slurm-local.md):
# no munge, no cgroups, no slurmdbd; everything under {root}.
ClusterName=jobgatetest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
# A cancelled job's steps get SIGTERM, and SIGKILL this many seconds later. A terminal session's
# step is an interactive shell, which ignores SIGTERM: with Slurm's default of 30 s, cancelling
# a job with a terminal open took 29.8-30.0 s to end it (measured), racing the tests' 30 s wait.
KillWait=5
# Finished jobs leave slurmctld's memory after a few seconds, so the adapter's sacct -c path
# (for jobs purged while nobody looked) is exercised too.
MinJobAge={min_job_age}
MailProg=/bin/true
ReturnToService=2
EnforcePartLimits=ALL
# More CPUs than the machine has, so many small test jobs run at once (config_overrides keeps
# slurmd from draining the node for the mismatch).
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1 RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
{extra}
"""


class SlurmCluster:
    """A real single-node Slurm (slurmctld + slurmd, Debian's packages) under `root`.

    Clients find it through `SLURM_CONF`, which `env` carries. Stopping cancels every job first,
    because running jobs outlive the daemons.
    """

    def __init__(
        self, root: Path, *, cpus: int = 16, min_job_age: int = 5, extra_conf: str = ""
    ) -> None:
        self.root = root
        self.extra_conf = extra_conf
        self.cpus = cpus
        self.min_job_age = min_job_age
        self.ctld_port = free_port()
        self.d_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> SlurmCluster:
        for binary in ("slurmctld", "slurmd", "sbatch"):
            if shutil.which(binary) is None:
                raise RuntimeError(f"{binary} is missing: run scripts/test, which installs Slurm")
        for folder in ("state", "spool", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            SLURM_CONF_TEMPLATE.format(
                root=self.root,
                ctld_port=self.ctld_port,
                d_port=self.d_port,
                cpus=self.cpus,
                min_job_age=self.min_job_age,
                extra=self.extra_conf,
            )
        )
        for command in (["slurmctld", "-D", "-c"], ["slurmd", "-D", "-N", "localhost"]):
            with open(self.root / "log" / f"{command[0]}.stdout", "ab") as out:
                self.processes.append(
                    subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-n", "localhost", "-o", "%T", check=False)
            if state.strip() == "idle":
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the Slurm node is not idle after 30 s; logs in {self.root}/log")

    def run(self, *command: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its standard output."""
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
        return result.stdout

    def job_ids(self) -> list[str]:
        return self.run("squeue", "-h", "-o", "%i", check=False).split()

    def cancel_all(self) -> None:
        ids = self.job_ids()
        if ids:
            self.run("scancel", *ids, check=False)
        deadline = time.monotonic() + 15
        while self.job_ids() and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        if any(process.poll() is None for process in self.processes):
            self.cancel_all()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes = []


KEYCLOAK_VERSION = "26.5.6"  # scripts/test fetches this one
KEYCLOAK_HOME = Path(
    os.environ.get("JOBGATE_KEYCLOAK_HOME", ROOT / f".test-services/keycloak-{KEYCLOAK_VERSION}")
)
KEYCLOAK_ADMIN = ("admin", "admin-password")
REALM_FILE = ROOT / "tests/keycloak/realm.json"


class Keycloak(LoopbackServer):
    """Keycloak in development mode on a loopback port, with the tests' realm `hpc` imported
    (`tests/keycloak/realm.json`) into an in-memory database: every run starts from the file.
    It takes half a minute or more to start, so a test session starts it once."""

    REALM = "hpc"

    def __init__(self, log_file: Path) -> None:
        super().__init__()
        self.management_port = free_port()
        self.log_file = log_file

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.REALM}"

    def start(self) -> Keycloak:
        java = os.environ.get("JOBGATE_JAVA_HOME")
        if not (KEYCLOAK_HOME / "bin/kc.sh").exists() or not java:
            raise RuntimeError(
                f"Keycloak ({KEYCLOAK_HOME}) or JOBGATE_JAVA_HOME (a Java 21+) is missing: run "
                "scripts/test, which fetches the one and finds the other"
            )
        imports = KEYCLOAK_HOME / "data/import"
        imports.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REALM_FILE, imports / f"{self.REALM}-realm.json")
        user, password = KEYCLOAK_ADMIN
        env = {
            **os.environ,
            "JAVA_HOME": java,
            "KC_BOOTSTRAP_ADMIN_USERNAME": user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": password,
        }
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(KEYCLOAK_HOME / "bin/kc.sh"),
                    "start-dev",
                    "--http-host=127.0.0.1",
                    f"--http-port={self.port}",
                    f"--http-management-port={self.management_port}",
                    "--db=dev-mem",
                    "--import-realm",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # kc.sh and its java: one process group to stop
            )
        self._wait_until_ready(timeout=240)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Keycloak exited; see {self.log_file}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(discovery, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"Keycloak did not start in {timeout} s; see {self.log_file}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def token(self, username: str, password: str, client: str = "jobgate-cli") -> str:
        """An access token by the password grant (the tests' way to sign in)."""
        response = httpx.post(
            f"{self.issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": client,
                "username": username,
                "password": password,
            },
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def add_signing_key(self, private_key_pem: str, priority: int) -> None:
        """Give the realm an RSA signing key of the caller's (through the admin API); the key
        with the highest priority signs the tokens issued from then on (a key rotation)."""
        user, password = KEYCLOAK_ADMIN
        response = httpx.post(
            f"{self.url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": user,
                "password": password,
            },
            timeout=30,
        )
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        admin = f"{self.url}/admin/realms/{self.REALM}"
        realm = httpx.get(admin, headers=headers, timeout=30).json()
        component = {
            "name": f"rotated-{priority}",
            "providerId": "rsa",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {
                "priority": [str(priority)],
                "enabled": ["true"],
                "active": ["true"],
                "algorithm": ["RS256"],
                "privateKey": [private_key_pem],
            },
        }
        created = httpx.post(f"{admin}/components", json=component, headers=headers, timeout=30)
        created.raise_for_status()


NGINX_MAIN = """\
user root;
worker_processes 1;
pid {folder}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""


class Nginx(LoopbackServer):
    """Debian's nginx in the foreground, serving `site` (the body of an `http {}` block, with
    `{port}` where it listens) from `folder`; its errors in `folder/error.log`."""

    def __init__(self, folder: Path, site: str) -> None:
        super().__init__()
        self.folder = folder
        self.site = site

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is missing: run scripts/test, which installs it")
        (self.folder / "site.conf").write_text(self.site.replace("{port}", str(self.port)))
        config = self.folder / "nginx.conf"
        config.write_text(NGINX_MAIN.format(folder=self.folder))
        error_log = str(self.folder / "error.log")
        self._run(
            [
                binary,
                "-p",
                str(self.folder),
                "-c",
                str(config),
                "-e",
                error_log,
                "-g",
                "daemon off;",
            ]
        )
        return self
