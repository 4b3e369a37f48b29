#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""upcie-perf against the sim backend: JSON output, doorbell batching,
--verify, --io-count, interrupts (--irq, --hybrid), --rate and option
errors. No timing assertions but lower bounds that pacing by the clock
implies: only counts and the shape of the output are checked. Prints TAP,
one line per check.

    test_perf.py PERF_BINARY CASE
"""
import json
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from tap import Tap  # noqa: E402

KEYS = ["iops", "bw_mib_s", "lat_ns", "submit_ns_per_io", "complete_ns_per_io",
        "sq_doorbells_per_io", "cq_doorbells_per_io", "qpair_bytes", "options", "qpairs",
        "devices", "lat_error_bound_pct", "errors", "verify_mismatches", "ios",
        "shadow_sq_per_io", "shadow_cq_per_io"]
LAT_KEYS = ["min", "avg", "max", "p50", "p90", "p99", "p999", "p9999"]
QP_KEYS = ["iops", "bw_mib_s", "lat_ns", "submit_ns_per_io", "complete_ns_per_io",
           "sq_doorbells_per_io", "cq_doorbells_per_io", "qpair_bytes", "ios"]

# A cross build runs the program through meson's exe wrapper (qemu-user).
perf = [*shlex.split(os.environ.get("MESON_EXE_WRAPPER", "")), sys.argv[1]]
tap = Tap()


def check(cond, what):
    """One TAP test point (the description on one line)."""
    tap.ok(cond, " ".join(str(what).split()))


def run(*args, rc=0):
    p = subprocess.run([*perf, "--device", "sim", *args], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == rc, f"{' '.join(args)}: exit {p.returncode}, expected {rc}; "
          f"stderr: {p.stderr.strip()}")
    return p


def run_json(*args, rc=0):
    p = run(*args, "--json", rc=rc)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        check(False, f"{' '.join(args)}: invalid JSON: {e}\n{p.stdout}")
        return {}


def case_json():
    j = run_json("--rw", "randread", "--bs", "4096", "--qd", "32", "--batch", "8", "--time", "1")
    for k in KEYS:
        check(k in j, f"key {k} missing")
    for k in LAT_KEYS:
        check(k in j.get("lat_ns", {}), f"lat_ns.{k} missing")
    check(len(j.get("qpairs", [])) == 1, "one qpair object")
    for q in j.get("qpairs", []):
        for k in QP_KEYS:
            check(k in q, f"qpairs[].{k} missing")
    check(j["ios"] > 0, "some I/O done")
    lat = j["lat_ns"]
    check(lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["p9999"]
          <= lat["max"], f"percentiles in order: {lat}")
    check(j["sq_doorbells_per_io"] <= 0.3, f"sq_doorbells_per_io {j['sq_doorbells_per_io']}")
    check(j["lat_error_bound_pct"] <= 1.0, "error bound <= 1 %")
    check(j["options"]["qd"] == 32 and j["options"]["batch"] == 8, "options echoed")
    check(0 < j["qpair_bytes"] <= 256 * 1024, f"qpair_bytes {j['qpair_bytes']}")
    # The sim counted the same doorbells the library wrote.
    sim = j["devices"][0].get("sim", {})
    check(sim.get("errors", 1) == 0, "no errors in the sim")


def case_default_batch():
    # The acceptance command: default batch at QD 32.
    j = run_json("--rw", "randread", "--bs", "4096", "--qd", "32", "--time", "1")
    check(j.get("sq_doorbells_per_io", 1) <= 0.3, "default batch: <= 0.3 SQ doorbells per I/O")


def case_stepped_counts():
    # The model stepped by the I/O thread: doorbell counts are exact.
    j = run_json("--sim-stepped", "--qd", "32", "--batch", "8", "--io-count", "8000",
                 "--no-dbbuf", "--loop", "batch")
    check(j.get("ios") == 8000, f"ios {j.get('ios')}")
    check(abs(j.get("sq_doorbells_per_io", 1) - 0.125) < 1e-9, "one SQ doorbell per 8")
    check(abs(j.get("cq_doorbells_per_io", 1) - 0.125) < 1e-9, "one CQ doorbell per 8")
    check(j.get("shadow_sq_per_io", 1) == 0, "no shadow doorbells with --no-dbbuf")
    check(j.get("devices", [{}])[0].get("sim", {}).get("sq_doorbells") == 1000,
          "the sim saw 1000 SQ doorbells")


def case_loops():
    # Both loops, lazy CQ head on and off, a queue larger than QD: exact
    # counts, the loop's own figures, and the lazy head going out only with
    # SQ rings that carry commands (the stepped model: counts are exact).
    for loop in ("batch", "callback"):
        for lazy in ([], ["--lazy-cq"]):
            args = ["--sim-stepped", "--qd", "32", "--io-count", "6001", "--no-dbbuf",
                    "--loop", loop, "--queue-size", "64", "--no-progress-thread", *lazy]
            j = run_json(*args)
            what = " ".join(args)
            o = j.get("options", {})
            check(j.get("ios") == 6001 and j.get("errors") == 0, f"{what}: ios {j.get('ios')}")
            check(o.get("loop") == loop and o.get("lazy_cq") == bool(lazy) and
                  o.get("queue_size") == 64 and o.get("progress_thread") is False,
                  f"{what}: options echoed {o}")
            if loop == "batch" and not lazy:
                # The echo can say true: main wakes up for a status line.
                o2 = run_json(*[a for a in args if a != "--no-progress-thread"],
                              "--status-interval", "1").get("options", {})
                check(o2.get("progress_thread") is True,
                      f"{what} --status-interval 1: progress_thread {o2.get('progress_thread')}")
            check(j.get("polls_per_io", 0) > 0 and j.get("tsc_reads_per_io", 0) > 0 and
                  0 <= j.get("empty_polls_per_io", -1) <= j.get("polls_per_io", 0),
                  f"{what}: polls, empty polls and TSC reads per I/O")
            if loop == "callback":
                # One ring per poll, not per --batch group.
                check(j.get("sq_doorbells_per_io", 1) < 0.125, f"{what}: SQ doorbells "
                      f"{j.get('sq_doorbells_per_io')}")
            if lazy:
                check(j.get("cq_doorbells_per_io", 1) <= j.get("sq_doorbells_per_io", 0) + 1e-3,
                      f"{what}: CQ head only with SQ rings")


def case_cq_size():
    # The CQ: the library's default (a page of entries, at least the SQ's),
    # or --cq-size; either way the run is exact.
    def default(qd):  # a page of entries, at least the SQ's, at most the sim's MQES + 1
        return min(max(os.sysconf("SC_PAGESIZE") // 16, qd + 1), 1024)

    for args, want in ((["--qd", "1"], default(1)), (["--qd", "1", "--cq-size", "2"], 2),
                       (["--qd", "300"], default(300)), (["--qd", "8", "--cq-size", "1000"], 1000)):
        j = run_json("--sim-stepped", "--io-count", "3001", *args)
        q = (j.get("qpairs") or [{}])[0]
        check(j.get("ios") == 3001 and j.get("errors") == 0 and q.get("cq_depth") == want,
              f"{args}: ios {j.get('ios')}, cq_depth {q.get('cq_depth')} (want {want})")


def case_verify():
    j = run_json("--rw", "randrw", "--mix", "50", "--verify", "--qd", "16", "--time", "1")
    check(j.get("verify_mismatches") == 0, f"mismatches {j.get('verify_mismatches')}")
    check(j.get("errors") == 0, "no errors")
    check(j.get("verified", 0) > 0, "some reads were checked")
    j = run_json("--rw", "randrw", "--verify", "--qd", "8", "--qpairs", "2", "--io-count",
                 "20000", "--sim-stepped")
    check(j.get("verify_mismatches") == 0 and j.get("verified", 0) > 0, "2 qpairs verify")


def case_io_count():
    j = run_json("--io-count", "12345", "--qd", "16", "--qpairs", "2")
    check(j.get("ios") == 12345, f"ios {j.get('ios')}")
    check(sum(q["ios"] for q in j.get("qpairs", [])) == 12345, "per-qpair ios add up")
    check(j.get("devices", [{}])[0].get("sim", {}).get("io_cmds") == 12345,
          "the sim ran exactly that many commands")
    j = run_json("--io-count", "1001", "--qd", "32", "--batch", "8", "--rw", "write")
    check(j.get("ios") == 1001 and j.get("writes") == 1001, "sequential writes, odd count")


def case_bad_options():
    bad = [
        ["--rw", "sideways"], ["--bs", "3000"], ["--bs", "4X"], ["--bs", "64M", "--qd", "8"],
        ["--qd", "0"], ["--qd", "x"], ["--batch", "64", "--qd", "32"], ["--mix", "50"],
        ["--mix", "101", "--rw", "randrw"], ["--time", "-1"], ["--time", "0"],
        ["--cpus", "a"], ["--ns", "9"], ["--bogus"], ["--qpairs", "0"], ["extra"],
        ["--io-count", "0"], ["--cpus", "0,"], ["--cpus", "0,,1"], ["--time", "0x1"],
        ["--time", "inf"], ["--time", "nan"], ["--warmup", "0x0"], ["--time", "1.."],
        ["--loop", "sideways"], ["--queue-size", "32", "--qd", "32"], ["--queue-size", "1"],
        ["--no-progress-thread", "--progress"], ["--cq-size", "1"],
        ["--cq-size", "32", "--qd", "32"], ["--cq-size", "40", "--queue-size", "64"],
        ["--idle-sleep", "x"], ["--idle-sleep", "100001"],
        ["--percentiles", "1.5,15"], ["--percentiles", "99,50,99"],
        ["--verify", "--rw", "randread"], ["--verify", "--rw", "read"],
        ["--verify", "--rw", "write"], ["--verify", "--rw", "randwrite"],
        ["--hybrid", "-1"], ["--hybrid", "abc"], ["--hybrid", "0"], ["--hybrid", "1000001"],
        ["--rate", "0"], ["--rate", "x"], ["--rate", "-5"], ["--rate", "100000001"],
        ["--irq-aggr", "4"], ["--irq-aggr-us", "100"], ["--irq-aggr", "0", "--irq"],
        ["--irq-aggr", "257", "--irq"], ["--irq-aggr-us", "0", "--irq"],
        ["--irq-aggr-us", "25501", "--irq"], ["--idle-sleep", "10", "--irq"],
        ["--idle-sleep", "10", "--hybrid", "20"],
    ]
    for args in bad:
        p = run(*args, "--time", "0.1", rc=1) if "--time" not in args else run(*args, rc=1)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        check(len(lines) == 1, f"{args}: one line of error, got {lines}")
        # It names what was wrong: the case's first option (or its word).
        want = {"--ns": "namespace 9"}.get(args[0], next(
            (a for a in args if a.startswith("--")), args[0]))
        check(bool(lines) and want in lines[0], f"{args}: the error names {want}: {lines}")
    p = subprocess.run(perf, capture_output=True, text=True)
    check(p.returncode == 1, "no --device: exit 1")
    p = subprocess.run([*perf, "--help"], capture_output=True, text=True)
    check(p.returncode == 0 and "exit codes" in p.stdout, "--help: exit 0 with usage")
    for opt in ["--irq", "--hybrid US", "--irq-aggr N", "--irq-aggr-us US", "--rate IOPS"]:
        check(f"  {opt} " in p.stdout, f"--help lists {opt}")
    p = subprocess.run([*perf, "--device", "0000:ff:1f.7", "--time", "0.1"],
                       capture_output=True, text=True)
    check(p.returncode == 2, f"missing device: exit 2, got {p.returncode}")
    for dev in ["12:34", "0000:01:00", "sim0", "zz:00.0"]:
        p = subprocess.run([*perf, "--device", dev, "--time", "0.1"],
                           capture_output=True, text=True)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        check(p.returncode == 1 and len(lines) == 1 and dev in lines[0],
              f"malformed device {dev}: exit 1 naming it, got {p.returncode}: {lines}")


def case_limits():
    # --bs and --qd are checked against MDTS and MQES before the DMA heap for
    # qd x bs (here 64 GiB) is made: a usage error naming the option.
    for args, opt, what in [(["--bs", "1024M", "--qd", "64"], "--bs", "MDTS"),
                            (["--bs", "64M", "--qd", "4"], "--bs", "MQES"),
                            (["--qd", "4000"], "--qd", "MQES")]:
        p = run(*args, "--time", "0.1", rc=1)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        check(len(lines) == 1 and opt in lines[0] and what in lines[0],
              f"{args}: one line naming {opt} and {what}, got {lines}")
        check("heap" not in p.stderr, f"{args}: no heap error: {p.stderr.strip()}")
    # A namespace formatted with metadata is refused naming the metadata,
    # not --bs or MDTS.
    p = run("--sim-ms", "8", "--ns", "2", "--time", "0.1", rc=1)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(len(lines) == 1 and "8 bytes of metadata" in lines[0] and "MDTS" not in lines[0]
          and "--bs" not in lines[0], f"--sim-ms 8: one line naming the metadata, got {lines}")
    # A large heap that is valid still runs (validated first, then made).
    j = run_json("--bs", "128K", "--qd", "1023", "--io-count", "2000", "--sim-stepped")
    check(j.get("ios") == 2000, f"128K x 1023: ios {j.get('ios')}")
    check(j.get("abandoned", 1) == 0, "nothing abandoned")
    # Above MDTS (the sim's is 128 KiB) an I/O goes as several commands, as
    # the fio engine sends it: 1 MiB is 8 commands, the queues sized for it.
    j = run_json("--bs", "1m", "--qd", "4", "--io-count", "200", "--sim-stepped")
    check(j.get("ios") == 200 and j.get("errors") == 0 and j.get("options", {}).get("bs") == 1 << 20,
          f"--bs 1m: 200 I/Os of 1 MiB, no errors: ios {j.get('ios')}, errors {j.get('errors')}")
    check(j.get("devices", [{}])[0].get("sim", {}).get("io_cmds") == 200 * 8,
          f"--bs 1m: 8 commands each: {j.get('devices', [{}])[0].get('sim')}")
    check(j.get("devices", [{}])[0].get("commands_per_io") == 8 and
          j.get("options", {}).get("queue_size") == 4 * 8 + 1,
          f"--bs 1m --qd 4: commands_per_io 8, queue_size 33: {j.get('options', {}).get('queue_size')}")
    check(j.get("qpairs", [{}])[0].get("depth", 0) >= 4 * 8 + 1,
          f"--bs 1m --qd 4: a queue of at least 33 entries: {j.get('qpairs', [{}])[0].get('depth')}")
    j = run_json("--rw", "randrw", "--verify", "--bs", "512k", "--qd", "4", "--io-count", "400",
                 "--sim-stepped")
    check(j.get("verify_mismatches") == 0 and j.get("verified", 0) > 0 and j.get("errors") == 0,
          f"--bs 512k --verify: split I/O verified ({j.get('verified')} reads checked)")


def case_report():
    # Run identity, per-direction results, CPU time, custom percentiles.
    j = run_json("--rw", "randrw", "--mix", "70", "--io-count", "4000", "--sim-stepped",
                 "--percentiles", "50,99.9,99.999")
    for k in ["version", "timestamp", "host", "cmdline", "time_unix"]:
        check(k in j, f"run identity: {k}")
    check(j.get("cmdline", [])[-3:] == ["--percentiles", "50,99.9,99.999", "--json"],
          f"cmdline as given: {j.get('cmdline')}")
    check(len(j.get("timestamp", "")) == 20 and j.get("timestamp", "").endswith("Z"),
          f"timestamp in UTC ISO 8601: {j.get('timestamp')}")
    rd, wr = j.get("read", {}), j.get("write", {})
    check(rd.get("ios", -1) == j.get("reads") and wr.get("ios", -1) == j.get("writes"),
          f"read/write ios match reads/writes: {rd.get('ios')} {wr.get('ios')}")
    check(rd.get("ios", 0) + wr.get("ios", 0) == j.get("ios") == 4000,
          "reads + writes = ios = 4000")
    check(rd.get("ios", 0) > wr.get("ios", 0) > 0, "--mix 70: more reads than writes, both")
    for name, d in [("total", j), ("read", rd), ("write", wr)]:
        lat = d.get("lat_ns", {})
        check(sorted(lat) == sorted(["min", "avg", "max", "p50", "p999", "p99999"]),
              f"{name}: lat_ns keys follow --percentiles: {sorted(lat)}")
        check(lat.get("min", 1) <= lat.get("p50", 0) <= lat.get("p999", 0) <=
              lat.get("p99999", 0) <= lat.get("max", 0) * 1.004 + 1,
              f"{name}: percentiles ordered: {lat}")
    check(min(rd["lat_ns"]["min"], wr["lat_ns"]["min"]) == j["lat_ns"]["min"] and
          max(rd["lat_ns"]["max"], wr["lat_ns"]["max"]) == j["lat_ns"]["max"],
          "total latency spans both directions")
    cpu = j.get("cpu", {})
    check(set(cpu) == {"usr_pct", "sys_pct", "pct", "us_per_io", "usr_us", "sys_us"} and
          cpu["usr_pct"] >= 0 and cpu["sys_pct"] >= 0, f"cpu usr/sys: {cpu}")
    check(abs(cpu.get("pct", -1) - cpu.get("usr_pct", 0) - cpu.get("sys_pct", 0)) < 0.02,
          f"cpu pct is usr + sys: {cpu}")
    want = (cpu.get("usr_us", 0) + cpu.get("sys_us", 0)) / 4000
    check(abs(cpu.get("us_per_io", -1) - want) < 0.001 and
          j.get("cpu_us_per_io") == cpu.get("us_per_io"),
          f"cpu us_per_io is (usr_us + sys_us) / ios: {cpu}, {j.get('cpu_us_per_io')}")
    check("wait" not in j, "polled: no wait statistics")
    q = j.get("qpairs", [{}])[0]
    check("read" in q and "write" in q and "cpu" in q, "per qpair: read, write, cpu")
    # Trims: their own count and histogram, in the totals.
    j = run_json("--rw", "randrw", "--trim", "25", "--io-count", "4000", "--sim-stepped")
    tr = j.get("trim", {})
    check(tr.get("ios", 0) > 0 and tr.get("ios") == j.get("trims"),
          f"--trim 25: trims counted ({j.get('trims')})")
    check(j.get("reads", 0) + j.get("writes", 0) + j.get("trims", 0) == j.get("ios") == 4000,
          "reads + writes + trims = ios")
    check(tr.get("lat_ns", {}).get("min", 0) > 0 and j.get("errors") == 0,
          "trims have latencies and no errors")
    check(j.get("devices", [{}])[0].get("sim", {}).get("io_cmds", 0) >= 4000,
          "the sim saw every command")
    p = subprocess.run([*perf, "--device", "sim", "--trim", "10", "--verify", "--time", "0.1"],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "--trim" in p.stderr, "--trim with --verify: exit 1")
    # Default percentiles keep the keys other scripts read.
    j = run_json("--io-count", "500", "--sim-stepped")
    check(all(k in j.get("lat_ns", {}) for k in LAT_KEYS), "default lat_ns keys kept")
    # Text: human units, per direction.
    p = run("--rw", "randrw", "--io-count", "2000", "--sim-stepped", "--no-progress")
    lat = [l for l in p.stdout.splitlines() if l.strip().startswith("lat: {")]
    check(lat and all(u in " ".join(lat) for u in ["p50: ", "p99.99: "]) and
          any(u in lat[0] for u in [" ns", " \u00b5s", " ms"]), f"text latency in units: {lat[:1]}")
    check(any(l.strip().startswith("read: {ios: ") for l in p.stdout.splitlines()) and
          any(l.strip().startswith("write: {ios: ") for l in p.stdout.splitlines()),
          "text: read and write lines")
    check(any(l.strip().startswith("cpu: {usr: ") and "total: " in l
              for l in p.stdout.splitlines()), "text: cpu line")
    check(any(l.strip().startswith("cpu_us_per_io: ") for l in p.stdout.splitlines()),
          "text: cpu_us_per_io line")
    check(not any(l.strip().startswith("wait: ") for l in p.stdout.splitlines()),
          "text, polled: no wait line")
    # One qpair: its figures are the totals, printed once.
    check("qpairs:" not in p.stdout and "- qpair:" not in p.stdout,
          "text, one qpair: no per-qpair section repeating the totals")
    p = run("--qpairs", "2", "--io-count", "2000", "--sim-stepped", "--no-progress")
    check("qpairs:" in p.stdout and p.stdout.count("- qpair:") == 2,
          "text, two qpairs: one section each")
    # Percentiles in any order are reported in ascending order.
    j = run_json("--io-count", "500", "--sim-stepped", "--percentiles", "99.9,50,99")
    lat = j.get("lat_ns", {})
    keys = [k for k in lat if k.startswith("p")]
    check(keys == ["p50", "p99", "p999"], f"--percentiles 99.9,50,99: keys sorted: {keys}")
    check(lat.get("p50", 1) <= lat.get("p99", 0) <= lat.get("p999", 0), f"values in order: {lat}")
    p = run("--io-count", "500", "--sim-stepped", "--no-progress", "--percentiles", "99,50")
    lat = [l for l in p.stdout.splitlines() if l.strip().startswith("lat: {")]
    check(lat and lat[0].index("p50:") < lat[0].index("p99:"), f"text: p50 before p99: {lat[:1]}")


def case_output():
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        p = run("--time", "1", "--json", "--output", out, "--status-interval", "0.2")
        check(p.stdout == "", f"--output: nothing on stdout: {p.stdout[:200]!r}")
        text = open(out).read() if os.path.exists(out) else ""
        lines = text.splitlines()
        status = [l for l in lines if l.startswith('{"status": ')]
        # 1 s at 0.2 s: about 5 (at least 3 on a slow or loaded machine).
        check(len(status) >= 3, f"--status-interval: JSON lines in the output ({len(status)})")
        ok = True
        for l in status:
            try:
                d = json.loads(l)["status"]
                ok &= {"time_s", "ios", "iops", "bw_mib_s", "lat_avg_ns"} <= set(d)
            except (ValueError, KeyError):
                ok = False
        check(ok, "each status line is one JSON object with time_s, ios, iops, bw_mib_s, lat_avg_ns")
        rest = "\n".join(l for l in lines if not l.startswith('{"status": '))
        try:
            j = json.loads(rest)
        except ValueError as e:
            j = {}
            check(False, f"the final report after the status lines is JSON: {e}")
        check(j.get("ios", 0) > 0 and "version" in j, "--output holds the final report")
        # A 1 s run of a spinning thread: user time shows.
        check(j.get("cpu", {}).get("usr_pct", 0) > 0, f"cpu usr_pct > 0: {j.get('cpu')}")
        t = [json.loads(l)["status"]["time_s"] for l in status]
        check(t == sorted(t), f"status times ascend: {t}")
        # A command line that is not UTF-8 (a file name in Latin-1): the
        # JSON stays valid UTF-8, each bad byte shown as U+FFFD.
        out = os.path.join(tmp.encode(), b"r\xff\xfe.json")
        p = subprocess.run([*perf, "--device", "sim", "--io-count", "100", "--sim-stepped",
                            "--json", "--output", out, "--bs", "4k"], capture_output=True)
        check(p.returncode == 0, f"--output with a non-UTF-8 name: exit {p.returncode}: {p.stderr!r}")
        try:
            j = json.loads(open(out, "rb").read().decode("utf-8"))
            arg = j.get("cmdline", [])[-3]
            check(arg.endswith("r\ufffd\ufffd.json"), f"cmdline keeps the argument, bad bytes as U+FFFD: {arg!r}")
        except (OSError, ValueError, IndexError) as e:
            check(False, f"the report of a non-UTF-8 command line is valid JSON in UTF-8: {e}")
    p = subprocess.run([*perf, "--device", "sim", "--time", "0.1", "--output",
                        "/nonexistent-dir/x"], capture_output=True, text=True)
    check(p.returncode == 1 and "--output /nonexistent-dir/x" in p.stderr,
          f"--output to a missing directory: exit 1 naming it ({p.returncode})")
    for bad in [["--percentiles", "50,50"], ["--percentiles", "0"], ["--percentiles", "101"],
                ["--percentiles", "50,,99"], ["--percentiles", ""], ["--status-interval", "0"],
                ["--status-interval", "x"]]:
        p = subprocess.run([*perf, "--device", "sim", "--time", "0.1", *bad],
                           capture_output=True, text=True)
        check(p.returncode == 1 and bad[0] in p.stderr, f"{bad}: exit 1 naming {bad[0]}")


WAIT_KEYS = {"waits", "sleeps", "wakeups", "empty", "spin_hits", "sleeps_per_io",
             "reaped_untimed", "rate_sleeps"}


def check_irq_run(j, what, ios=None):
    """A run with --irq or --hybrid: I/O done, no errors, the wait
    statistics and CPU time per I/O, in the totals and per qpair."""
    w = j.get("wait", {})
    check((j.get("ios", 0) > 0 if ios is None else j.get("ios") == ios) and
          j.get("errors") == 0 and j.get("abandoned") == 0,
          f"{what}: ios {j.get('ios')}, errors {j.get('errors')}")
    check(set(w) == WAIT_KEYS, f"{what}: wait statistics {sorted(w)}")
    check(w.get("waits", 0) > 0 and w.get("wakeups", 0) <= w.get("sleeps", 0) and
          w.get("empty", 0) <= w.get("wakeups", 0), f"{what}: wait counts consistent: {w}")
    check(j.get("options", {}).get("irq") is True, f"{what}: options.irq")
    check(j.get("cpu_us_per_io", 0) > 0 and "pct" in j.get("cpu", {}),
          f"{what}: CPU time per I/O {j.get('cpu')}")
    d = j.get("devices", [{}])[0]
    check(d.get("irq") == "msix" and d.get("irq_vectors", 0) > 1,
          f"{what}: the sim's MSI-X vectors {d.get('irq')} {d.get('irq_vectors')}")
    for q in j.get("qpairs", []):
        check("wait" in q and "cpu_us_per_io" in q, f"{what}: per qpair wait and cpu")


def case_irq():
    # Completions through upcie_nvme_qpair_wait(), threaded (the model posts
    # and signals from its thread) and stepped (the wait's idle hook steps
    # the model): both loops, plain and hybrid, with and without coalescing.
    for loop in ("callback", "batch"):
        for mode in (["--irq"], ["--hybrid", "50"]):
            args = [*mode, "--loop", loop, "--qd", "8", "--time", "0.5"]
            j = run_json(*args)
            check_irq_run(j, " ".join(args))
            check(j.get("options", {}).get("hybrid_us") == (50 if len(mode) > 1 else 0),
                  f"{args}: hybrid_us echoed")
            args = ["--sim-stepped", *mode, "--loop", loop, "--qd", "8", "--io-count", "3001"]
            check_irq_run(run_json(*args), " ".join(args), ios=3001)
    # Two qpairs, a vector each.
    j = run_json("--irq", "--qpairs", "2", "--qd", "4", "--io-count", "4000")
    check_irq_run(j, "--irq --qpairs 2", ios=4000)
    check(len(j.get("qpairs", [])) == 2 and
          sum(q.get("wait", {}).get("waits", 0) for q in j.get("qpairs", [])) ==
          j.get("wait", {}).get("waits"), "--qpairs 2: per-qpair waits add up")
    # Coalescing: the controller takes it, I/O completes.
    args = ["--irq", "--irq-aggr", "4", "--irq-aggr-us", "100", "--qd", "16", "--time", "0.5"]
    j = run_json(*args)
    check_irq_run(j, " ".join(args))
    o = j.get("options", {})
    check(o.get("irq_aggr") == 4 and o.get("irq_aggr_us") == 100, f"coalescing echoed: {o}")
    # At QD 1 nothing is there when the wait starts: it sleeps (threaded).
    j = run_json("--irq", "--qd", "1", "--time", "0.5")
    check(j.get("wait", {}).get("sleeps", 0) > 0, f"--irq QD 1: sleeps {j.get('wait')}")
    # Text: the wait line, the header names the mode.
    p = run("--hybrid", "50", "--io-count", "2000", "--sim-stepped", "--no-progress")
    lines = [l.strip() for l in p.stdout.splitlines()]
    check(any(l.startswith("wait: {waits: ") for l in lines) and
          any(l.startswith("sleeps_per_io: ") for l in lines) and
          any(l.startswith("cpu_us_per_io: ") for l in lines), "text: wait and cpu lines")
    check("hybrid (spin 50" in p.stdout.splitlines()[0], f"text header: {lines[:1]}")


def case_rate():
    # --rate paces submissions by the clock: a run of N I/Os at R IOPS takes
    # at least (N - 1) / R seconds, and one of T seconds does at most about
    # R * T. Polled, the loop spins between submissions (many empty polls,
    # no wait statistics); with --irq it sleeps.
    for stepped in ([], ["--sim-stepped"]):
        for mode in ([], ["--irq"], ["--hybrid", "50"]):
            args = [*stepped, *mode, "--rate", "2000", "--qd", "1", "--io-count", "400"]
            what = " ".join(args)
            j = run_json(*args)
            check(j.get("ios") == 400 and j.get("errors") == 0, f"{what}: ios {j.get('ios')}")
            check(j.get("runtime_s", 0) >= 399 / 2000 * 0.99,
                  f"{what}: paced, runtime {j.get('runtime_s')} s >= 0.1995 s")
            check(j.get("options", {}).get("rate") == 2000, f"{what}: rate echoed")
            cpu = j.get("cpu", {})
            check("pct" in cpu and cpu.get("us_per_io", 0) > 0, f"{what}: CPU {cpu}")
            if not mode:
                check("wait" not in j, f"{what}: polled, no wait statistics")
                check(j.get("empty_polls_per_io", 0) > 1,
                      f"{what}: polled spins between submissions "
                      f"({j.get('empty_polls_per_io')} empty polls per I/O)")
                continue
            w = j.get("wait", {})
            # Nothing in flight between two submissions: a sleep each time.
            check(w.get("rate_sleeps", 0) > 0, f"{what}: sleeps between submissions {w}")
            if not stepped and "--hybrid" in mode:
                # Hybrid: a completion inside the spin window needs no sleep
                # (a slow, emulated run may see every one there).
                check(w.get("sleeps", 0) + w.get("spin_hits", 0) > 0,
                      f"{what}: waits slept or spun {w}")
            elif not stepped:
                check(w.get("sleeps", 0) > 0, f"{what}: waits slept {w}")
    # Time-bound, two qpairs sharing the rate: never above it (a late
    # submission is made up, but the grid never runs ahead), some I/O done.
    for mode in ([], ["--irq"]):
        args = [*mode, "--rate", "2000", "--qpairs", "2", "--qd", "4", "--time", "1"]
        j = run_json(*args)
        check(0 < j.get("ios", 0) <= 2000 * j.get("runtime_s", 0) + 10 and
              j.get("errors") == 0, f"{' '.join(args)}: ios {j.get('ios')} in "
              f"{j.get('runtime_s')} s")
    p = run("--irq", "--rate", "2000", "--io-count", "100", "--no-progress")
    lines = [l.strip() for l in p.stdout.splitlines()]
    check(any(l.startswith("rate_sleeps: ") for l in lines) and
          "rate 2000 IOPS" in p.stdout.splitlines()[0], f"text: rate shown: {lines[:1]}")


def case_md():
    # Metadata and PI, each layout and type: writes and reads verified
    # (data by --verify, PI by the host with --pi host, by the device with
    # --pi pract), nothing fails.
    for layout in ([], ["--sim-extended"], ["--sim-pi-first"]):
        for pi in ("1", "2", "3"):
            for mode in (["--pi", "host"], ["--pi", "pract"], ["--md"]):
                args = ["--sim-ms", "16" if layout else "8", "--sim-pi", pi, *layout, *mode,
                        "--rw", "randrw", "--verify", "--io-count", "2000", "--sim-stepped",
                        "--qd", "8"]
                j = run_json(*args)
                check(j.get("ios") == 2000 and j.get("errors") == 0
                      and j.get("verify_mismatches") == 0,
                      f"{' '.join(args)}: ios {j.get('ios')}, errors {j.get('errors')}, "
                      f"mismatches {j.get('verify_mismatches')}")
    # The 64-bit guard format: 16 bytes of PI alone (separate, and
    # extended), and last in 64 bytes of metadata.
    for layout in (["--sim-ms", "16"], ["--sim-ms", "16", "--sim-extended"],
                   ["--sim-ms", "64"]):
        for pi in ("1", "3"):
            for mode in (["--pi", "host"], ["--pi", "pract"]):
                args = [*layout, "--sim-pi", pi, "--sim-guard64", *mode, "--rw", "randrw",
                        "--verify", "--io-count", "1000", "--sim-stepped", "--qd", "8"]
                j = run_json(*args)
                check(j.get("ios") == 1000 and j.get("errors") == 0
                      and j.get("verify_mismatches") == 0,
                      f"{' '.join(args)}: ios {j.get('ios')}, errors {j.get('errors')}, "
                      f"mismatches {j.get('verify_mismatches')}")
    # What does not fit is refused with a line naming it.
    for args, what in [(["--sim-ms", "8", "--pi", "host"], "protection information"),
                       (["--sim-ms", "8", "--sim-pi", "1", "--sim-guard64"], "--sim-ms 16"),
                       (["--md"], "has no metadata"),
                       (["--sim-pi", "1"], "--sim-ms 8"),
                       (["--sim-ms", "8", "--sim-pi-first"], "--sim-pi"),
                       (["--pi", "both"], "'host' nor 'pract'"),
                       (["--sim-ms", "8", "--md", "--trim", "10"], "--trim")]:
        p = run(*args, "--time", "0.1", rc=1)
        check(what in p.stderr, f"{args}: names {what!r}: {p.stderr.strip()}")


CASES = {
    "md": case_md,
    "report": case_report,
    "output": case_output,
    "limits": case_limits,
    "json": case_json,
    "default_batch": case_default_batch,
    "stepped_counts": case_stepped_counts,
    "loops": case_loops,
    "cq_size": case_cq_size,
    "verify": case_verify,
    "io_count": case_io_count,
    "bad_options": case_bad_options,
    "irq": case_irq,
    "rate": case_rate,
}

if __name__ == "__main__":
    CASES[sys.argv[2]]()
    sys.exit(tap.done())
