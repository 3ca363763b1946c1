"""What LogLoupe knows without an LLM: failure families, and the tenant's own past incidents.

``FAMILIES`` is the built-in knowledge base: common failure families with the wording that
identifies them, what they mean, their usual causes and the fixes an on-call engineer would
try first. ``match_families`` maps a pattern's text to the families it belongs to.

``FeedbackStore`` is the memory: feedback on insights (helpful / wrong / "fixed by …") kept
in a JSON file under the data directory, and retrieval of past incidents similar to a new
pattern by pattern id and by TF-IDF cosine similarity of their text.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Family:
    id: str
    title: str
    pattern: re.Pattern[str]
    description: str
    cause: str
    fixes: tuple[str, ...]


def _f(id: str, title: str, regex: str, description: str, cause: str, *fixes: str) -> Family:
    return Family(id, title, re.compile(regex, re.IGNORECASE), description, cause, fixes)


FAMILIES: tuple[Family, ...] = (
    _f(
        "oom",
        "Out of memory / process killed",
        r"out of memory|oom[- ]?kill|oomkilled|killed process|outofmemoryerror|cannot allocate memory|"
        r"memory limit|exceeding memory|gc overhead limit|java heap space|exit code 137",
        "A process ran out of memory and was killed by the kernel, the container runtime or its own runtime.",
        "The workload needs more memory than its limit (heap, cgroup or node), or memory is leaking.",
        "Raise the memory limit (container limit, -Xmx, executor memory) to the observed peak plus headroom.",
        "Look for a leak: compare memory over time of the killed process; take a heap profile.",
        "Reduce concurrency or batch sizes so peak memory fits.",
    ),
    _f(
        "disk_full",
        "Disk full",
        r"no space left|disk full|filesystem .* full|is \d+% full|quota exceeded|"
        r"low disk space|read-only file system",
        "Writes are failing, or about to, because a file system is full or was remounted read-only.",
        "Logs, temporary files, snapshots or data outgrew the volume; read-only after I/O errors.",
        "Free space: rotate/compress logs, delete temporary files and old snapshots (`du -xh / | sort -h`).",
        "Grow the volume or move data; add an alert at 80 % usage.",
        "If remounted read-only, check the kernel log for the I/O error that caused it before remounting.",
    ),
    _f(
        "conn_refused",
        "Connection refused",
        r"connection refused|econnrefused|connect\(\) failed \(111",
        "A client reached the host but nothing accepted the connection on that port.",
        "The target service is down, restarting, listening on another port/interface, or a firewall rejects.",
        "Check the target is running and listening: `ss -ltnp | grep <port>`; read its own logs for a crash.",
        "Verify host/port configuration and service discovery records.",
        "Add retries with backoff and a readiness check so clients wait for the service.",
    ),
    _f(
        "timeout",
        "Timeouts",
        r"timed out|timeout|i/o timeout|deadline exceeded|sockettimeoutexception|"
        r"not responding",
        "Operations waited longer than their limit for a peer, a disk or a lock.",
        "Overloaded or hung peer, network loss or partition, slow storage, or a limit set too low.",
        "Find the slow side: latency and saturation of the peer (CPU, GC pauses, queue depth).",
        "Check network health between the hosts (packet loss, MTU, firewall state tables).",
        "Only after that, tune the timeout; add circuit breaking so callers do not pile up.",
    ),
    _f(
        "conn_reset",
        "Connection reset / link lost",
        r"connection reset|reset by peer|broken pipe|"
        r"link (?:has been )?severed|connection (?:was )?lost|lost connection|connection broken|"
        r"closed unexpectedly|"
        r"eofexception",
        "An established connection was torn down by the peer or the network in the middle of an exchange.",
        "Peer process crashed or restarted, idle-timeout on a proxy/load balancer, or network/link failure.",
        "Correlate with restarts or crashes of the peer at the same time.",
        "Check load balancer / proxy idle timeouts against keep-alive settings.",
        "Check link and interface error counters (`ip -s link`, switch logs) for the hosts involved.",
    ),
    _f(
        "dns",
        "DNS resolution failures",
        r"no such host|name or service not known|unknownhostexception|"
        r"temporary failure in name resolution|nxdomain|could not resolve|getaddrinfo",
        "Host names could not be resolved to addresses.",
        "Wrong host name, missing DNS record, or the resolver is unreachable or overloaded.",
        "Resolve the name from the failing host: `dig <name>`; check /etc/resolv.conf.",
        "Fix or add the DNS record; check resolver health and search domains.",
    ),
    _f(
        "tls",
        "TLS / certificate problems",
        r"x509|certificate|ssl|tls|handshake fail",
        "TLS handshakes fail or certificates are (about to be) invalid.",
        "Expired or not-yet-valid certificate, wrong host name, missing intermediate CA, protocol mismatch.",
        "Inspect the chain: `openssl s_client -connect host:port -servername host`.",
        "Renew the certificate and automate renewal; install the full chain; sync clocks (NTP).",
    ),
    _f(
        "auth",
        "Authentication failures",
        r"authentication failure|failed password|invalid user|"
        r"unauthori[sz]ed|\b401\b|access denied|login failed|check pass; user unknown|break-in attempt",
        "Logins or API calls are rejected for bad credentials.",
        "Wrong or rotated credentials, expired tokens, or brute-force attempts from outside.",
        "If the sources are unknown addresses: block them (fail2ban / firewall) and disable password login.",
        "If it is your own service: rotate the credential everywhere it is used; check token expiry.",
    ),
    _f(
        "permission",
        "Permission / missing file errors",
        r"permission denied|eacces|operation not permitted|"
        r"no such file or directory|enoent|exec format error|not found",
        "A process could not open, execute or find a file it expected.",
        "Wrong path or working directory, missing deployment artefact, wrong owner/mode, binary "
        "for the wrong "
        "architecture.",
        "Check the path exists on that host and its owner/mode: `ls -l <path>`, `namei -l <path>`.",
        "Fix the job or service configuration that names the path; redeploy the missing artefact.",
    ),
    _f(
        "db_lock",
        "Database deadlocks / lock waits",
        r"deadlock|lock wait timeout|could not obtain lock|"
        r"serialization failure",
        "Transactions block each other and the database aborts one of them.",
        "Transactions touch the same rows in different orders, or hold locks too long.",
        "Retry aborted transactions; access rows in a consistent order; keep transactions short.",
        "Find the statements involved (InnoDB status / pg_locks) and add the missing index.",
    ),
    _f(
        "db_pool",
        "Connection pool exhaustion",
        r"pool.*(?:exhaust|limit|timed out|not available)|"
        r"too many connections|remaining connection slots|queuepool limit",
        "The application or database ran out of connections.",
        "Connection leaks, pool too small for the concurrency, or slow queries holding connections.",
        "Check for leaked connections (not returned to the pool); enable leak detection.",
        "Size the pool to the database limit divided by the number of instances; fix slow queries.",
    ),
    _f(
        "http_5xx",
        "HTTP 5xx responses",
        r"\" 5\d\d |status[:=] ?5\d\d|\b50[0234]\b.*http|http.*\b50[0234]\b|"
        r"internal server error|bad gateway|service unavailable|gateway timeout|upstream",
        "Requests fail on the server side or at a proxy in front of it.",
        "Crashing or overloaded backend, failing dependency, or a proxy that cannot reach its upstream.",
        "Match the 5xx timestamps with the backend's own errors and restarts.",
        "For 502/504 check the upstream is healthy and proxy timeouts exceed backend latency.",
    ),
    _f(
        "exception",
        "Application exceptions",
        r"exception|traceback|error:|panic:|nil pointer|"
        r"nullpointer|stack trace|goroutine \d+|fatal error:",
        "Application code raised an unhandled exception or panicked.",
        "A bug triggered by this input or state, or a failing dependency surfaced as an exception.",
        "Read the exception type and the first frame in your own code; reproduce with the logged input.",
        "Handle the failing dependency explicitly (retry, fallback) instead of letting it propagate.",
    ),
    _f(
        "kernel_hw",
        "Kernel and hardware errors",
        r"kernel panic|machine check|mce|hardware error|ecc|"
        r"uncorrect|parity|i/o error|input/output error|segfault|general protection|bus error|tlb|"
        r"storage interrupt|interrupt|medium error|smart|drive not ready|scsi|ata\d|nmi|temperature|"
        r"kernel terminated|panic",
        "The kernel or the hardware reports a fault: memory, CPU, disk, bus or interconnect.",
        "Failing component (DIMM, disk, NIC/interconnect, CPU), overheating, firmware or driver bug.",
        "Check whether the errors concentrate on one node or device; drain that node from service.",
        "Run hardware diagnostics (memtest/EDAC counters, SMART, vendor tools); replace the failing part.",
        "Update firmware and drivers if the fault matches a known erratum.",
    ),
    _f(
        "network_hw",
        "Network / interconnect failures",
        r"link is down|link down|nic|interconnect|"
        r"packet|network is unreachable|no route to host|host unreachable|infiniband|ib_",
        "Network links or interfaces fail, drop or corrupt traffic.",
        "Bad cable/transceiver/port, switch failure, driver or firmware issue, misconfiguration.",
        "Check interface counters and link state on both ends; reseat or replace the cable.",
        "Look for the same failure on several hosts behind one switch.",
    ),
    _f(
        "fs_mount",
        "File system / mount failures",
        r"mount.*fail|fail.*mount|lustre|nfs|stale file handle|"
        r"ext[34]-fs error|xfs|journal",
        "A local or network file system failed to mount or reports errors.",
        "Storage server unreachable, network problems, corrupt file system, or wrong mount options.",
        "Check the storage server and the network path; `dmesg` for the underlying error.",
        "Run fsck on local file systems after unmounting; for network file systems check the server's logs.",
    ),
    _f(
        "hdfs",
        "HDFS block problems",
        r"blk_|datanode|namenode|dataxceiver|packetresponder|replica",
        "HDFS reports failed block transfers, replicas or block operations.",
        "DataNode down or overloaded, network problems between DataNodes, or disk failures on a DataNode.",
        "`hdfs dfsadmin -report` and `hdfs fsck /` to find missing or under-replicated blocks.",
        "Check the DataNodes named in the lines for disk and network errors; decommission a failing node.",
    ),
    _f(
        "spark",
        "Spark / YARN job failures",
        r"executor|stage \d|task \d|yarn|container killed|spark",
        "Spark tasks or executors fail and jobs abort after retries.",
        "Executors killed for memory, skewed partitions, failing input, or lost nodes.",
        "Open the failed stage in the Spark UI; check executor memory and spill.",
        "Raise spark.executor.memoryOverhead or repartition skewed data.",
    ),
    _f(
        "zookeeper",
        "ZooKeeper quorum / session problems",
        r"zookeeper|quorum|election|sessionid|session 0x|"
        r"leader|follower",
        "ZooKeeper peers lose contact, elections repeat, or client sessions drop.",
        "Network partitions between ensemble members, long GC pauses, slow disks for the transaction log.",
        "Check connectivity between all ensemble members on the quorum and election ports.",
        "Put the transaction log on a dedicated fast disk; check GC pauses.",
    ),
    _f(
        "assert",
        "Assertion failures",
        r"assert",
        "Code hit a condition its authors believed impossible.",
        "A bug, or state corrupted by an earlier failure.",
        "Report it with the surrounding lines to the component's owners; look for an earlier failure.",
    ),
)


# Most specific first: the first family that matches names an insight.
_ORDER = (
    "db_lock",
    "db_pool",
    "oom",
    "disk_full",
    "dns",
    "tls",
    "conn_refused",
    "conn_reset",
    "timeout",
    "auth",
    "permission",
    "http_5xx",
    "hdfs",
    "spark",
    "zookeeper",
    "fs_mount",
    "kernel_hw",
    "network_hw",
    "exception",
    "assert",
)
FAMILIES = tuple(sorted(FAMILIES, key=lambda f: _ORDER.index(f.id)))


def match_families(text: str) -> list[Family]:
    """Families whose wording appears in ``text``, most specific first (order of FAMILIES)."""
    return [f for f in FAMILIES if f.pattern.search(text)]


# --- memory: feedback and past incidents -------------------------------------------------------

_TOKEN = re.compile(r"[a-z][a-z_]{2,}")


def _terms(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("<", " ").replace(">", " "))


@dataclass(slots=True)
class Feedback:
    pattern_id: str
    template: str
    verdict: str  # helpful | wrong | fixed
    resolution: str = ""
    note: str = ""
    created: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class PastIncident:
    pattern_id: str
    template: str
    resolution: str
    seen: str
    similarity: float


VERDICTS = ("helpful", "wrong", "fixed")


class FeedbackStore:
    """Feedback kept in ``<data_dir>/knowledge/<tenant>.json``; small, append-mostly."""

    def __init__(self, data_dir: Path, tenant: str = "default") -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", tenant) or tenant in {".", ".."}:
            raise ValueError(f"invalid tenant name {tenant!r}")
        self.path = data_dir / "knowledge" / f"{tenant}.json"
        self._lock = threading.Lock()

    def all(self) -> list[Feedback]:
        if not self.path.exists():
            return []
        rows = json.loads(self.path.read_text(encoding="utf-8"))
        return [Feedback(**row) for row in rows]

    def add(self, feedback: Feedback) -> None:
        if feedback.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
        with self._lock:
            rows = [asdict(f) for f in self.all()]
            rows.append(asdict(feedback))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows, indent=1), encoding="utf-8")
            tmp.replace(self.path)

    def similar(self, pattern_id: str, template: str, k: int = 3, threshold: float = 0.3) -> list[PastIncident]:
        """Past resolutions for this pattern id, then for textually similar ones (TF-IDF cosine)."""
        resolved = [f for f in self.all() if f.verdict == "fixed" and f.resolution]
        if not resolved:
            return []
        docs = [_terms(f.template) for f in resolved]
        query = _terms(template)
        idf = _idf([*docs, query])
        qv = _vector(query, idf)
        scored: list[PastIncident] = []
        for fb, doc in zip(resolved, docs, strict=True):
            sim = 1.0 if fb.pattern_id == pattern_id else _cosine(qv, _vector(doc, idf))
            if sim >= threshold:
                seen = time.strftime("%Y-%m-%d", time.gmtime(fb.created))
                scored.append(PastIncident(fb.pattern_id, fb.template, fb.resolution, seen, round(sim, 3)))
        scored.sort(key=lambda p: -p.similarity)
        return scored[:k]


def _idf(docs: Iterable[list[str]]) -> dict[str, float]:
    docs = list(docs)
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(set(doc))
    n = len(docs)
    return {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}


def _vector(doc: list[str], idf: dict[str, float]) -> dict[str, float]:
    tf = Counter(doc)
    return {t: c * idf.get(t, 1.0) for t, c in tf.items()}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(v * b.get(t, 0.0) for t, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def feedback_to_dict(fb: Feedback) -> dict[str, Any]:
    return asdict(fb)
