"""The training corpus of the default classifier, built by the project from curated templates.

Each template is a message an operator would recognise from Linux kernels and daemons, web
servers, JVM/Python/Go services, databases, Kubernetes, Hadoop/Spark/ZooKeeper and HPC
clusters (interconnects, parallel file systems, batch schedulers, CPU exceptions named as
x86, ARM and PowerPC Book-E name them). Templates carry the label an on-call engineer would
give the line:

- ``incident``: the system is failing now (hardware, kernel, network, storage, a crashed or
  killed process, a request path returning 5xx).
- ``preventive_action``: nothing has failed yet, or a user/configuration problem needs a
  fix (disk filling, certificate expiring, retries, user's missing file, failed logins).
- ``normal``: routine operation, statistics, corrected errors, and register/state dumps that
  only add context to an incident reported on another line.

Rendering fills variables at random (seeded) and wraps each message in one of several header
styles with a level consistent with the label, sometimes none, so the model learns the
wording rather than the header. No line comes from a labelled benchmark data set.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from pathlib import Path

INCIDENT = "incident"
PREVENTIVE = "preventive_action"
NORMAL = "normal"

_INCIDENT_TEMPLATES = """
kernel: Out of memory: Killed process {pid} ({proc}) total-vm:{n}kB, anon-rss:{n}kB
kernel: {proc} invoked oom-killer: gfp_mask=0x{hex}, order=0, oom_score_adj=0
kernel: EXT4-fs error (device {dev}): ext4_find_entry:{n}: inode #{n}: comm {proc}: reading directory lblock 0
kernel: EXT3-fs error (device {dev}): ext3_journal_start_sb: Detected aborted journal
kernel: Buffer I/O error on device {dev}, logical block {n}
kernel: end_request: I/O error, dev {dev}, sector {n}
kernel: ata{n}.00: failed command: READ FPDMA QUEUED
kernel: ata{n}: hard resetting link after SError
kernel: mce: [Hardware Error]: Machine check events logged
kernel: mce: [Hardware Error]: CPU {n}: Machine Check Exception: {n} Bank {n}: {hex}
kernel: EDAC MC{n}: UE page 0x{hex}, offset 0x{hex}, row {n}: uncorrectable ECC error
kernel: Kernel panic - not syncing: Fatal exception in interrupt
kernel: Kernel panic - not syncing: Attempted to kill init!
kernel: BUG: unable to handle kernel NULL pointer dereference at 0x{hex}
kernel: Unable to handle kernel paging request for data at address 0x{hex}
kernel: Oops: Kernel access of bad area, sig: 11 [#1]
kernel: general protection fault: 0000 [#1] SMP
kernel: {proc}[{pid}]: segfault at {hex} ip {hex} sp {hex} error 4 in {lib}
kernel: NMI: IOCK error (debug interrupt?) on CPU {n}
kernel: Uhhuh. NMI received for unknown reason {hex} on CPU {n}
kernel: CPU{n}: Core temperature above threshold, cpu clock throttled
kernel: {iface}: NIC Link is Down
kernel: bonding: bond0: link status definitely down for interface {iface}, disabling it
kernel: nfs: server {host} not responding, still trying
kernel: hda: dma_intr: status=0x51 {{ DriveReady SeekComplete Error }}
kernel: hdc: drive not ready for command
kernel: scsi{n}: SCSI error: return code = 0x{hex}
kernel: mptscsih: ioc0: attempting task abort! (sc={hex})
kernel: cciss: cmd {hex} has CHECK CONDITION, sense key = 0x3
kernel: {nic}: SRAM parity error detected on the interface card
kernel: {nic}: firmware is not running, interface disabled
kernel: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer
kernel: {arch_exc} in kernel mode at 0x{hex}
kernel: unhandled {arch_exc} at address 0x{hex}, killing process {pid}
{arch_exc}
kernel: {arch_exc} on cpu {n}, terminating job {n}
kernel: Machine check in kernel mode.
kernel: RPC: error {n} on rpc call to {host}
kernel: watchdog: BUG: soft lockup - CPU#{n} stuck for {n}s!
kernel: INFO: task {proc}:{pid} blocked for more than 120 seconds.
kernel: journal commit I/O error
kernel: XFS ({dev}): metadata I/O error: block 0x{hex} error 5
kernel: md/raid:md{n}: Disk failure on {dev}, disabling device.
kernel: blk_update_request: critical medium error, dev {dev}, sector {n}
systemd[1]: {svc}.service: Main process exited, code=killed, status=9/KILL
systemd[1]: {svc}.service: Failed with result 'core-dump'.
systemd[1]: Failed to start {Svc} Service.
systemd-coredump[{pid}]: Process {pid} ({proc}) of user {n} dumped core.
{proc}[{pid}]: Segmentation fault (core dumped)
java.net.ConnectException: Connection refused (Connection refused) connecting to {host}:{port}
java.net.SocketTimeoutException: Read timed out after {ms} ms talking to {host}:{port}
java.lang.OutOfMemoryError: Java heap space
java.lang.OutOfMemoryError: GC overhead limit exceeded
java.lang.NullPointerException at com.{pkg}.{Cls}.{meth}({Cls}.java:{n})
Exception in thread "{thread}" java.lang.IllegalStateException: {Cls} is closed
Unhandled exception in request handler: java.io.IOException: Broken pipe
Traceback (most recent call last): File "{path}.py", line {n}, in {meth}
ConnectionResetError: [Errno 104] Connection reset by peer
psycopg2.OperationalError: could not connect to server: Connection refused
sqlalchemy.exc.TimeoutError: QueuePool limit of size {n} overflow {n} reached, connection timed out
Deadlock found when trying to get lock; try restarting transaction
HikariPool-1 - Connection is not available, request timed out after {ms}ms.
FATAL: remaining connection slots are reserved for non-replication superuser connections
FATAL: the database system is in recovery mode
PANIC: could not write to file "pg_wal/xlogtemp.{n}": No space left on device
InnoDB: Database page corruption on disk or a failed file read of page {n}
upstream timed out (110: Connection timed out) while reading response header from upstream, client: {ip}
connect() failed (111: Connection refused) while connecting to upstream, client: {ip}, server: {host}
{ip} - - [{date}] "GET /api/{word} HTTP/1.1" 502 {n} "-" "curl/7.68.0"
{ip} - - [{date}] "POST /api/{word} HTTP/1.1" 503 {n} "-" "python-requests/2.31"
{ip} - - [{date}] "GET /{word} HTTP/1.1" 500 {n} "-" "Mozilla/5.0"
panic: runtime error: invalid memory address or nil pointer dereference
fatal error: concurrent map writes
dial tcp: lookup {host} on {ip}:53: no such host
dial tcp {ip}:{port}: connect: connection refused
dial tcp {ip}:{port}: i/o timeout
x509: certificate has expired or is not yet valid: current time {date} is after {date}
SSL_do_handshake() failed (SSL: error:14094410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure)
write {path}: no space left on device
could not write to {path}: Read-only file system
disk {dev} failed SMART self-test, reallocated sector count {n}
RAID array {dev} degraded: member disk {n} failed
DataXceiver error processing WRITE_BLOCK operation src: /{ip}:{port} dst: /{ip}:{port} java.io.IOException: Connection reset by peer
Exception in receiveBlock for block blk_{n} java.io.EOFException
PacketResponder {n} for block blk_{n} Interrupted.
writeBlock blk_{n} received exception java.io.IOException: Could not read from stream
Unexpected error trying to delete block blk_{n}. BlockInfo not found in volumeMap.
Exception causing close of session 0x{hex} due to java.io.IOException: Connection reset by peer
Cannot open channel to {n} at election address /{ip}:{port} java.net.ConnectException: Connection refused
Lost executor {n} on {host}: Container killed by YARN for exceeding memory limits
Task {n} in stage {n}.0 failed {n} times; aborting job
Exception in task {n}.0 in stage {n}.0 (TID {n})
Instance failed to spawn: No valid host was found. There are not enough hosts available.
Back-off restarting failed container {proc} in pod {proc}-{hex}
Container {proc} was OOMKilled, exit code 137
Liveness probe failed: HTTP probe failed with statuscode: 500
job {n} terminated abnormally: node {host} failed
communication failure on interconnect link {n} of node {host}
socket to {ip}:{port} closed unexpectedly: Connection reset by peer
lost heartbeat from node {host}, marking it down
node {host} is down, draining jobs
LustreError: {n}:0:({word}.c:{n}:{word}()) {word}: connection to {host} was lost
LustreError: mount of {path} failed: rc = -5
NFS mount of {host}:{path} failed: Input/output error
ib_mad: timeout waiting for response on port {n}
pbs_mom: Bad file descriptor (9) in tm_request, job {n} not running
scheduler: node {host} not responding, job {n} requeued
memory controller reported uncorrectable ECC error on DIMM {n}
fan {n} failed, speed 0 RPM
power supply {n} failure detected
voltage on rail {n} out of range, node powered off
assertion failed: {word} != NULL in {word}.c:{n}
FATAL ERROR in native method: JNI error
service {svc} crashed with signal 11
worker process {pid} exited on signal 9
health check failed for {host}:{port}: connection refused
replication to {host} broken: connection lost
""".strip().splitlines()

_PREVENTIVE_TEMPLATES = """
filesystem {path} is {pct}% full
disk usage on {dev} at {pct}%, above warning threshold of 85%
low disk space on {path}: {n} MB remaining
certificate for {host} expires in {n} days
TLS certificate {host} will expire on {date}
memory usage {pct}% of limit, approaching threshold
high CPU load {n} on {host} for {n} minutes
slow query took {ms} ms: SELECT * FROM {word} WHERE id = ?
request to {host} slow: {ms} ms, retrying
connection to {host}:{port} failed, retrying in {n}s (attempt {n}/{n})
will retry in {n} seconds
deprecated: option {word} will be removed in version {n}
DeprecationWarning: {word}() is deprecated, use {word}_v2()
queue {word} length {n} is nearing capacity
rate limit approaching for {user}: {n} requests in {n}s
replica lag {n}s exceeds warning threshold
GC pause {ms}ms exceeded target, consider increasing heap
swap usage high: {pct}%
RAID patrol read found {n} media errors, recommend replacement of {dev}
SMART warning on {dev}: temperature {n} C, approaching limit
open {path}: no such file or directory
cannot access '{path}': Permission denied
exec {path}: exec format error
chdir to {path} failed: No such file or directory
mount of {host}:{path} failed, retrying in {n} seconds
{proc}: error while loading shared libraries: {lib}: cannot open shared object file: No such file or directory
bash: {word}: command not found
config file {path} not found, using defaults
invalid argument --{word}; see usage
Failed password for invalid user {user} from {ip} port {port} ssh2
Failed password for {user} from {ip} port {port} ssh2
authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost={ip}
Invalid user {user} from {ip}
pam_unix(sshd:auth): authentication failure; rhost={ip} user={user}
check pass; user unknown
POSSIBLE BREAK-IN ATTEMPT! reverse mapping checking getaddrinfo for {host} failed
{ip} - - [{date}] "GET /{word} HTTP/1.1" 404 {n} "-" "Mozilla/5.0"
{ip} - - [{date}] "POST /login HTTP/1.1" 401 {n} "-" "Mozilla/5.0"
running in degraded mode: {n} of {n} replicas available
battery of RAID controller is low, write cache disabled
clock skew of {n} ms detected with {host}
throttling client {ip}: too many requests
backoff: {svc} unhealthy, backing off for {n}s
""".strip().splitlines()

_NORMAL_TEMPLATES = """
sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2
sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2
pam_unix(sshd:session): session opened for user {user} by (uid=0)
pam_unix(crond:session): session closed for user root
CRON[{pid}]: (root) CMD (run-parts /etc/cron.hourly)
systemd[1]: Started {Svc} Service.
systemd[1]: Starting {Svc} Service...
systemd[1]: Reached target Multi-User System.
kernel: {iface}: link up, 1000 Mbps, full-duplex
kernel: e1000e: {iface} NIC Link is Up 1000 Mbps Full Duplex
kernel: EXT4-fs ({dev}): mounted filesystem with ordered data mode
kernel: usb {n}-1: new high-speed USB device number {n} using xhci_hcd
kernel: {n} correctable ECC errors detected and corrected on DIMM {n}
kernel: EDAC MC{n}: CE page 0x{hex}, offset 0x{hex}: corrected error
kernel: instruction cache parity error corrected
kernel: machine check: corrected error logged on bank {n}
kernel: recovered from transient error on link {n}
kernel: {n} total interrupts, {n} critical interrupts, {n} microseconds spent in handler
kernel: {n} alignment exceptions fixed up by the kernel
kernel: {n} page faults handled in {n} microseconds
kernel: {proc}({pid}): unaligned access to 0x{hex}, ip=0x{hex}
NIP: {hex} LR: {hex} CTR: {hex}
GPR00: {hex} {hex} {hex} {hex}
RIP: 0010:[<{hex}>] {word}+0x{hex}/0x{hex}
eax: {hex} ebx: {hex} ecx: {hex} edx: {hex}
{register} register: 0x{hex}
{register}........................{n}
{register} address: 0x{hex}
Receiving block blk_{n} src: /{ip}:{port} dest: /{ip}:{port}
PacketResponder {n} for block blk_{n} terminating
Received block blk_{n} of size {n} from /{ip}
BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip}:{port} is added to blk_{n} size {n}
BLOCK* NameSystem.allocateBlock: {path}. blk_{n}
Deleting block blk_{n} file {path}
{ip}:{port} Served block blk_{n} to /{ip}
Verification succeeded for blk_{n}
Running task {n}.0 in stage {n}.0 (TID {n})
Finished task {n}.0 in stage {n}.0 (TID {n}) in {ms} ms on {host} ({n}/{n})
Registered BlockManager BlockManagerId({n}, {host}, {port})
Successfully started service 'sparkDriver' on port {port}.
Got assigned task {n}
Accepted socket connection from /{ip}:{port}
Established session 0x{hex} with negotiated timeout {n} for client /{ip}:{port}
Closed socket connection for client /{ip}:{port} which had sessionid 0x{hex}
Received connection request /{ip}:{port}
Notification: {n} (n.leader), 0x{hex} (n.zxid), 0x1 (n.round), LOOKING (n.state)
{ip} "GET /v2/{hex}/servers/detail HTTP/1.1" status: 200 len: {n} time: 0.{n}
Instance {hex} spawned successfully. Took {n}.{n} seconds to build instance.
VM Started (Lifecycle Event)
{ip} - - [{date}] "GET /{word} HTTP/1.1" 200 {n} "-" "Mozilla/5.0"
{ip} - - [{date}] "POST /api/{word} HTTP/1.1" 201 {n} "-" "python-requests/2.31"
health check passed for {host}:{port}
backup of {word} completed successfully in {n}s
checkpoint complete: wrote {n} buffers ({pct}%)
GC pause (young) {ms}ms
Loaded {n} rules from {path}
Listening on 0.0.0.0:{port}
Connected to {host}:{port}
connection from {ip} closed by client
user {user} logged in
request {hex} completed in {ms} ms
job {n} started on {n} nodes
job {n} completed with exit code 0
generating core file for rank {n} after user abort
idle timeout for session {hex}, closing
retransmitting packet {n} to {host}, {n} retransmits so far
cache miss rate {pct}% for {word}
scheduled maintenance window opens at {date}
rotating log file {path}
{proc} version {n}.{n}.{n} starting
configuration reloaded
jk2_init() Found child {pid} in scoreboard slot {n}
workerEnv.init() ok {path}
Step_LSC onStandStepChanged {n}
kernel: Kernel command line: ro root=LABEL=/ console=ttyS0,115200
kernel: Linux version 2.6.{n}-smp (gcc version 3.4.{n}) #1 SMP
kernel: Memory: {n}k/{n}k available ({n}k kernel code, {n}k reserved, {n}k data)
kernel: Freeing unused kernel memory: {n}k freed
kernel: ACPI: PCI Interrupt 0000:00:{n}.{n}[A] -> GSI {n} (level, low) -> IRQ {n}
kernel: ACPI: Processor [CPU{n}] (supports {n} throttling states)
kernel: EXT3 FS on {dev}, internal journal
kernel: EXT3-fs: mounted filesystem with ordered data mode.
kernel: kjournald starting.  Commit interval 5 seconds
kernel: hda: ATAPI {n}X CD-ROM drive, {n}kB Cache, UDMA(33)
kernel: sd {n}:0:0:0: [{dev}] {n} 512-byte hardware sectors
kernel: SCSI subsystem initialized
kernel: NET: Registered protocol family {n}
kernel: ip_tables: (C) 2000-2006 Netfilter Core Team
kernel: device {iface} entered promiscuous mode
kernel: {iface}: no IPv6 routers present
kernel: ata{n}: SATA link up 1.5 Gbps (SStatus 113 SControl 300)
kernel: CPU{n}: Intel(R) Xeon(TM) CPU 3.{n}GHz stepping {n}
kernel: Total of {n} processors activated ({n}.{n} BogoMIPS).
kernel: nfs: server {host} OK
kernel: audit({n}.{n}:{n}): initialized
kernel: Bluetooth: Core ver 2.{n}
kernel: {nic}: driver version {n}.{n}.{n} loaded
kernel: IRQ {n}/{iface}: IRQF_DISABLED is not guaranteed on shared IRQs
kernel: interrupt handler for IRQ {n} registered
kernel: Adding {n}k swap on /dev/{dev}.  Priority:-1 extents:1
kernel: Losing some ticks... checking if CPU frequency changed.
kernel: {proc}: module license 'unspecified' taints kernel.
ntpd[{pid}]: kernel time sync enabled {n}
ntpd[{pid}]: synchronized to {ip}, stratum {n}
ntpd[{pid}]: time reset +0.{n} s
syslogd 1.4.1: restart.
xinetd[{pid}]: START: {proc} pid={pid} from={ip}
dhcpd: DHCPREQUEST for {ip} from {hex} via {iface}
dhcpd: DHCPACK on {ip} to {hex} via {iface}
postfix/smtpd[{pid}]: connect from {host}[{ip}]
crond[{pid}]: (root) CMD (/usr/lib/sa/sa1 1 1)
gmond[{pid}]: sending metadata for {word}
ib_sm.x[{pid}]: No topology change
rpc.statd[{pid}]: Version 1.0.{n} Starting
snmpd[{pid}]: Connection from UDP: [{ip}]:{port}
""".strip().splitlines()

_ARCH_EXCEPTIONS = [
    "data storage interrupt",
    "instruction storage interrupt",
    "data TLB error interrupt",
    "instruction TLB error interrupt",
    "alignment interrupt",
    "program check exception",
    "machine check interrupt",
    "double fault",
    "invalid opcode exception",
    "page fault exception",
    "stack segment fault",
    "synchronous external abort",
    "undefined instruction exception",
]
_REGISTERS = [
    "machine state",
    "exception syndrome",
    "core configuration",
    "instruction address",
    "data address",
    "link",
    "condition",
    "stack pointer",
    "program counter",
    "fault status",
    "debug control",
    "floating point status",
]
_WORDS = [
    "orders",
    "users",
    "index",
    "cart",
    "session",
    "report",
    "metrics",
    "auth",
    "inventory",
    "search",
    "billing",
    "upload",
    "catalog",
    "payments",
    "events",
    "status",
    "config",
]
_PROCS = ["java", "python3", "nginx", "postgres", "mysqld", "node", "redis-server", "httpd", "sshd", "app"]
_SVCS = ["api", "worker", "scheduler", "gateway", "indexer", "ingest", "billing", "auth"]
_DEVS = ["sda", "sdb1", "sdc", "nvme0n1p2", "md0", "dm-3", "hda", "vdb"]
_IFACES = ["eth0", "eth1", "ens3", "eno1", "ib0", "bond0"]
_NETS = ["tree", "torus", "ethernet", "infiniband", "control", "management"]
_COMPONENTS = ["Node card", "Link card", "Service card", "power module", "fan module", "switch"]


def _word(rng: random.Random) -> str:
    return rng.choice(_WORDS)


def _fill(template: str, rng: random.Random) -> str:
    ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
    values = {
        "pid": str(rng.randint(100, 65000)),
        "n": str(rng.choice([rng.randint(0, 9), rng.randint(10, 999), rng.randint(1000, 10**7)])),
        "hex": "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([4, 8, 16]))),
        "ip": ip,
        "port": str(rng.randint(1024, 65535)),
        "host": rng.choice(["node", "db", "web", "cn", "dn", "app", "bn"]) + str(rng.randint(1, 999)),
        "user": rng.choice(["root", "admin", "alice", "bob", "deploy", "test", "oracle", "guest"]),
        "path": "/"
        + "/".join(
            "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 8)))
            for _ in range(rng.randint(1, 4))
        ),
        "proc": rng.choice(_PROCS),
        "svc": rng.choice(_SVCS),
        "Svc": rng.choice(_SVCS).capitalize(),
        "dev": rng.choice(_DEVS),
        "iface": rng.choice(_IFACES),
        "nic": rng.choice(["mlx4_0", "myri0", "hfi1_0", "ixgbe0", "qib0"]),
        "net": rng.choice(_NETS),
        "lib": rng.choice(["libc-2.31.so", "libssl.so.1.1", "libjvm.so", "libpython3.11.so"]),
        "ms": str(rng.randint(1, 60000)),
        "pct": str(rng.randint(80, 99)),
        "date": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T1{rng.randint(0, 9)}:2{rng.randint(0, 9)}:00Z",
        "word": _word(rng),
        "pkg": rng.choice(["acme.api", "shop.core", "corp.etl"]),
        "Cls": rng.choice(["OrderService", "Client", "Pool", "Handler", "Repository"]),
        "meth": rng.choice(["run", "handle", "process", "fetch", "save"]),
        "thread": rng.choice(["main", "pool-1-thread-3", "worker-2"]),
        "arch_exc": rng.choice(_ARCH_EXCEPTIONS),
        "register": rng.choice(_REGISTERS),
        "component": rng.choice(_COMPONENTS),
    }
    return template.format(**values)


_LEVELS = {
    INCIDENT: ["ERROR", "FATAL", "CRITICAL", "SEVERE", "", "", "ERROR", "FATAL"],
    PREVENTIVE: ["WARN", "WARNING", "", "INFO", "ERROR", "NOTICE"],
    NORMAL: ["INFO", "INFO", "DEBUG", "", "", "NOTICE", "INFO"],
}


def _header(rng: random.Random, level: str) -> str:
    host = rng.choice(["node", "web", "db", "cn"]) + str(rng.randint(1, 500))
    style = rng.randrange(5)
    lvl = f"{level} " if level else ""
    if style == 0:
        return f"Jun {rng.randint(1, 28):2d} 1{rng.randint(0, 9)}:0{rng.randint(0, 9)}:11 {host} {lvl}"
    if style == 1:
        return f"2024-06-{rng.randint(10, 28)} 12:0{rng.randint(0, 9)}:01,123 {lvl}[main] "
    if style == 2:
        return f"[{lvl.strip() or 'notice'}] " if rng.random() < 0.5 else f"{lvl}"
    if style == 3:
        return f"{rng.randint(10**9, 2 * 10**9)} {host} {rng.choice(['KERN', 'APP', 'SYS'])} {lvl}"
    return ""


def generate(seed: int = 7, per_template: int = 24) -> Iterator[dict[str, str]]:
    """Yield ``{"message", "label"}`` rows; deterministic for a seed."""
    rng = random.Random(seed)
    groups = (
        (INCIDENT, _INCIDENT_TEMPLATES),
        (PREVENTIVE, _PREVENTIVE_TEMPLATES),
        (NORMAL, _NORMAL_TEMPLATES),
    )
    for label, templates in groups:
        for template in templates:
            for _ in range(per_template):
                message = _fill(template, rng)
                level = rng.choice(_LEVELS[label])
                yield {"message": _header(rng, level) + message, "label": label}


def write_corpus(path: Path, seed: int = 7, per_template: int = 24) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in generate(seed, per_template):
            out.write(json.dumps(row) + "\n")
            count += 1
    return count
