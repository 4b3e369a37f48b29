/* SPDX-License-Identifier: BSD-3-Clause */
/* upcie-perf: the command line. Every bad option is one line on stderr and exit 1. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perf.h"

static const char usage_text[] =
    "usage: upcie-perf --device BDF|sim [options]\n"
    "\n"
    "Run I/O against NVMe namespaces through libupcie and report IOPS,\n"
    "bandwidth, latency percentiles and the driver's own cost per I/O.\n"
    "\n"
    "  --device BDF|sim   controller: a PCI address bound to vfio-pci or\n"
    "                     uio_pci_generic, or 'sim' (the emulated controller,\n"
    "                     on its own thread); repeat for several controllers\n"
    "  --ns N             namespace id (default: the first active one)\n"
    "  --rw MODE          read|write|randread|randwrite|randrw (default randread)\n"
    "  --mix PCT          randrw: percentage of reads (default 50)\n"
    "  --trim PCT         that percentage of commands deallocate (trim) their\n"
    "                     blocks instead (default 0; not with --verify)\n"
    "  --bs SIZE          bytes per I/O, K/M suffixes; a multiple of the LBA size\n"
    "                     (default 4K); above the controller's MDTS an I/O goes\n"
    "                     as several commands (upcie_nvme_read_split()), and\n"
    "                     the queues hold --qd of them\n"
    "  --qd N             commands in flight per qpair (default 32)\n"
    "  --batch N          commands per SQ doorbell with --loop batch, 1..qd; the\n"
    "                     first fill only with --loop callback (default min(qd, 8))\n"
    "  --qpairs N         queue pairs per controller, one thread each (default 1)\n"
    "  --cpus LIST        pin the threads to these CPUs, in order: 0,2,4-7\n"
    "  --time S           measured run time in seconds (default 5; with\n"
    "                     --io-count only when given)\n"
    "  --warmup S         run this long before measuring (default 0)\n"
    "  --io-count N       measure exactly N I/Os in total, then stop\n"
    "  --verify           with --rw randrw: writes carry a pattern of LBA and\n"
    "                     generation; reads check blocks written in this run\n"
    "  --no-dbbuf         do not use shadow doorbells even if offered\n"
    "  --loop MODE        callback: each completion callback submits the next\n"
    "                     command, published by the poll that reaped it (its SQ\n"
    "                     doorbell before the CQ head's; the default); batch:\n"
    "                     after each poll, new commands in groups of --batch,\n"
    "                     one upcie_nvme_ring() per group (CQ head first)\n"
    "  --lazy-cq          the qpair's CQ head goes out with the next SQ ring, not\n"
    "                     with every poll (upcie_nvme_qpair_opts.lazy_cq)\n"
    "  --queue-size N     entries per queue (default qd + 1; at least qd + 1)\n"
    "  --idle-sleep US    after a poll that found nothing, sleep US microseconds\n"
    "                     (default 0: spin), giving the CPU to whoever emulates\n"
    "                     the device\n"
    "  --cq-size N        entries of the completion queue (default: the\n"
    "                     library's, at least a page of entries; at least\n"
    "                     the queue size; at most the controller's MQES + 1,\n"
    "                     like --queue-size: the JSON's per-qpair depth and\n"
    "                     cq_depth say what was used)\n"
    "  --irq              queue pairs with interrupts (a vector each: vfio, sim;\n"
    "                     the one line under uio): where a polled loop would\n"
    "                     spin, upcie_nvme_qpair_wait() sleeps until a\n"
    "                     completion; a device without interrupts is a device\n"
    "                     error (exit 2) with the library's reason\n"
    "  --hybrid US        --irq, and a wait keeps polling for US microseconds\n"
    "                     after the last completion before it sleeps\n"
    "                     (upcie_nvme_qpair_opts.spin_us; 1..1000000)\n"
    "  --irq-aggr N       with --irq: interrupt coalescing, one interrupt per N\n"
    "                     completions (1..256; upcie_nvme_ctrl_opts.irq_aggr)\n"
    "  --irq-aggr-us US   with --irq: or after at most US microseconds, in steps\n"
    "                     of 100 (1..25500; upcie_nvme_ctrl_opts.irq_aggr_us)\n"
    "  --rate IOPS        at most IOPS I/Os per second over all qpairs (each an\n"
    "                     equal share), paced by the clock: polled, the loop\n"
    "                     spins between submissions; with --irq it sleeps\n"
    "                     (1..100000000; default: as fast as the queue allows)\n"
    "  --no-progress-thread  refuse --progress and --status-interval: the main\n"
    "                     thread only waits for the I/O threads (as it does\n"
    "                     whenever there are no progress or status lines)\n"
    "  --json             results as one JSON object on stdout (latencies in ns)\n"
    "  --percentiles LIST latency percentiles to report, in any order, e.g.\n"
    "                     50,99,99.9 (default 50,90,99,99.9,99.99)\n"
    "  --output FILE      results to FILE instead of stdout\n"
    "  --status-interval S  every S seconds one JSON line on the output:\n"
    "                     {\"status\": {time_s, ios, iops, bw_mib_s, lat_avg_ns}}\n"
    "  --progress         one line per second (default when stdout is a terminal)\n"
    "  --no-progress\n"
    "  --sim-stepped      sim only: no model thread; each I/O thread steps the\n"
    "                     model itself before each poll (deterministic, for\n"
    "                     counting the driver's instructions under valgrind)\n"
    "  --sim-ms BYTES     sim only: namespaces have BYTES of metadata per block\n"
    "                     (without --md the tool refuses them, naming the metadata)\n"
    "  --sim-pi TYPE      sim only: namespaces with protection information type\n"
    "                     TYPE (1, 2, 3; needs --sim-ms 8 or more)\n"
    "  --sim-extended     sim only: metadata at the end of each block (extended\n"
    "                     LBAs), not in a separate buffer\n"
    "  --sim-pi-first     sim only: PI in the first metadata bytes, not the last\n"
    "  --sim-guard64      sim only: PI in the 64-bit guard format (16 bytes, CRC-64,\n"
    "                     48-bit reference tags; needs --sim-pi and --sim-ms 16+)\n"
    "  --md               move the namespace's metadata with each I/O (separate\n"
    "                     buffer or extended LBAs, as it is formatted); needs a\n"
    "                     namespace with metadata\n"
    "  --pi host|pract    protection information (implies --md): 'host' computes\n"
    "                     the guard and tags for writes and checks them on reads\n"
    "                     (device checks on too); 'pract' lets the device insert\n"
    "                     them on writes and check them on reads. A failed check\n"
    "                     counts as an error (exit 3)\n"
    "  --help\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 device error, 3 I/O errors or verify mismatches\n";

enum {
	OPT_DEVICE = 256,
	OPT_NS,
	OPT_RW,
	OPT_MIX,
	OPT_BS,
	OPT_QD,
	OPT_BATCH,
	OPT_QPAIRS,
	OPT_CPUS,
	OPT_TIME,
	OPT_WARMUP,
	OPT_IOCOUNT,
	OPT_VERIFY,
	OPT_NODBBUF,
	OPT_JSON,
	OPT_PROGRESS,
	OPT_NOPROGRESS,
	OPT_STEPPED,
	OPT_SIM_MS,
	OPT_SIM_PI,
	OPT_SIM_EXT,
	OPT_SIM_PI_FIRST,
	OPT_SIM_GUARD64,
	OPT_MD,
	OPT_PI,
	OPT_PCTS,
	OPT_TRIM,
	OPT_OUTPUT,
	OPT_STATUS,
	OPT_LOOP,
	OPT_LAZYCQ,
	OPT_QSIZE,
	OPT_CQSIZE,
	OPT_NOPTHREAD,
	OPT_IDLESLEEP,
	OPT_IRQ,
	OPT_HYBRID,
	OPT_IRQAGGR,
	OPT_IRQAGGRUS,
	OPT_RATE,
	OPT_HELP,
};

static const struct option longopts[] = {
    {"device", required_argument, NULL, OPT_DEVICE},
    {"ns", required_argument, NULL, OPT_NS},
    {"rw", required_argument, NULL, OPT_RW},
    {"mix", required_argument, NULL, OPT_MIX},
    {"trim", required_argument, NULL, OPT_TRIM},
    {"bs", required_argument, NULL, OPT_BS},
    {"qd", required_argument, NULL, OPT_QD},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"qpairs", required_argument, NULL, OPT_QPAIRS},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"time", required_argument, NULL, OPT_TIME},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"io-count", required_argument, NULL, OPT_IOCOUNT},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"no-dbbuf", no_argument, NULL, OPT_NODBBUF},
    {"json", no_argument, NULL, OPT_JSON},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NOPROGRESS},
    {"sim-stepped", no_argument, NULL, OPT_STEPPED},
    {"sim-ms", required_argument, NULL, OPT_SIM_MS},
    {"sim-pi", required_argument, NULL, OPT_SIM_PI},
    {"sim-extended", no_argument, NULL, OPT_SIM_EXT},
    {"sim-pi-first", no_argument, NULL, OPT_SIM_PI_FIRST},
    {"sim-guard64", no_argument, NULL, OPT_SIM_GUARD64},
    {"md", no_argument, NULL, OPT_MD},
    {"pi", required_argument, NULL, OPT_PI},
    {"percentiles", required_argument, NULL, OPT_PCTS},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"status-interval", required_argument, NULL, OPT_STATUS},
    {"loop", required_argument, NULL, OPT_LOOP},
    {"lazy-cq", no_argument, NULL, OPT_LAZYCQ},
    {"queue-size", required_argument, NULL, OPT_QSIZE},
    {"cq-size", required_argument, NULL, OPT_CQSIZE},
    {"no-progress-thread", no_argument, NULL, OPT_NOPTHREAD},
    {"idle-sleep", required_argument, NULL, OPT_IDLESLEEP},
    {"irq", no_argument, NULL, OPT_IRQ},
    {"hybrid", required_argument, NULL, OPT_HYBRID},
    {"irq-aggr", required_argument, NULL, OPT_IRQAGGR},
    {"irq-aggr-us", required_argument, NULL, OPT_IRQAGGRUS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const char *const rw_names[] = {"read", "write", "randread", "randwrite", "randrw"};

const char *perf_rw_name(enum perf_rw rw)
{
	return rw_names[rw];
}

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "upcie-perf: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see --help)\n");
	return 1;
}

/* Unsigned integer in [min, max]; 0 or -1. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* 4096, 4K, 4k, 4KiB, 1M, 1MiB. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!*s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	if (mul > 1 && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end || !v || v > (1ull << 40) / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* Decimal seconds: 2, 0.5, .25; no sign, exponent, hex, inf or nan (strtod
 * would take them all). */
static int parse_secs(const char *s, double *out)
{
	char *end;
	double v;
	int digits = 0, dots = 0;

	for (const char *c = s; *c; c++) {
		if (*c >= '0' && *c <= '9')
			digits++;
		else if (*c == '.' && !dots)
			dots++;
		else
			return -1;
	}
	if (!digits)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 1e6)
		return -1;
	*out = v;
	return 0;
}

/* "0,2,4-7" */
static int parse_cpus(const char *s, struct perf_opts *o)
{
	const char *p = s;

	o->ncpus = 0;
	while (*p) {
		char *end;
		long a, b;

		if (*p < '0' || *p > '9')
			return -1;
		a = strtol(p, &end, 10);
		b = a;
		if (*end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				return -1;
			b = strtol(p, &end, 10);
		}
		if (a < 0 || b < a || b >= PERF_MAX_CPUS)
			return -1;
		for (long c = a; c <= b; c++) {
			if (o->ncpus == PERF_MAX_CPUS)
				return -1;
			o->cpus[o->ncpus++] = (int)c;
		}
		if (*end == ',') {
			end++;
			if (!*end)
				return -1; /* a trailing comma */
		} else if (*end) {
			return -1;
		}
		p = end;
	}
	return o->ncpus ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* "50,99,99.9": 1..PERF_MAX_PCTS values in (0, 100], in any order (kept
 * ascending), with distinct JSON keys (1.5 and 15 would both be "p15"). */
static int parse_pcts(const char *s, struct perf_opts *o)
{
	char buf[256], *save = NULL;
	unsigned n = 0;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		double v;

		if (n == PERF_MAX_PCTS || parse_secs(tok, &v) || v <= 0 || v > 100)
			return -1;
		o->pcts[n++] = v;
		for (unsigned i = 0; i + 1 < n; i++) {
			char a[32], b[32];

			perf_pct_key(o->pcts[i], a, sizeof(a));
			perf_pct_key(v, b, sizeof(b));
			if (!strcmp(a, b))
				return -1;
		}
	}
	if (!n || s[strlen(s) - 1] == ',' || s[0] == ',' || strstr(s, ",,"))
		return -1;
	qsort(o->pcts, n, sizeof(o->pcts[0]), cmp_double);
	o->npcts = n;
	return 0;
}

int perf_opts_parse(int argc, char **argv, struct perf_opts *o)
{
	bool mix_set = false, batch_set = false, time_set = false, progress_set = false;
	struct upcie_pci_addr addr;
	uint64_t v;
	int c;

	static const double default_pcts[] = {50, 90, 99, 99.9, 99.99};

	memset(o, 0, sizeof(*o));
	o->argc = argc;
	o->argv = argv;
	o->npcts = sizeof(default_pcts) / sizeof(default_pcts[0]);
	memcpy(o->pcts, default_pcts, sizeof(default_pcts));
	o->rw = PERF_RANDREAD;
	o->mix = 50;
	o->bs = 4096;
	o->qd = 32;
	o->loop_cb = true;
	o->qpairs = 1;
	o->time_s = 5;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DEVICE:
			if (o->ndev == PERF_MAX_DEVS)
				return bad("at most %s controllers", "16");
			if (strcmp(optarg, "sim") && upcie_pci_addr_parse(optarg, &addr))
				return bad(
				    "--device '%s' is neither a PCI address (0000:01:00.0 or "
				    "01:00.0) nor 'sim'",
				    optarg);
			o->devices[o->ndev++] = optarg;
			break;
		case OPT_NS:
			if (parse_u64(optarg, 1, 0xfffffffe, &v))
				return bad("--ns '%s' is not a namespace id (1..0xfffffffe)",
					   optarg);
			o->nsid = (uint32_t)v;
			break;
		case OPT_RW: {
			unsigned i;
			for (i = 0; i < 5 && strcmp(optarg, rw_names[i]); i++)
				;
			if (i == 5)
				return bad("--rw '%s' is not read, write, randread, randwrite or "
					   "randrw",
					   optarg);
			o->rw = (enum perf_rw)i;
			break;
		}
		case OPT_MIX:
			if (parse_u64(optarg, 0, 100, &v))
				return bad("--mix '%s' is not a percentage (0..100)", optarg);
			o->mix = (unsigned)v;
			mix_set = true;
			break;
		case OPT_BS:
			if (parse_size(optarg, &o->bs))
				return bad("--bs '%s' is not a size (e.g. 4096, 4K, 128K, 1M)",
					   optarg);
			break;
		case OPT_QD:
			if (parse_u64(optarg, 1, 65534, &v))
				return bad("--qd '%s' is not a queue depth (1..65534)", optarg);
			o->qd = (uint32_t)v;
			break;
		case OPT_BATCH:
			if (parse_u64(optarg, 1, 65534, &v))
				return bad("--batch '%s' is not a count (1..qd)", optarg);
			o->batch = (uint32_t)v;
			batch_set = true;
			break;
		case OPT_QPAIRS:
			if (parse_u64(optarg, 1, PERF_MAX_QPAIRS, &v))
				return bad("--qpairs '%s' is not a count (1..64)", optarg);
			o->qpairs = (uint32_t)v;
			break;
		case OPT_CPUS:
			if (parse_cpus(optarg, o))
				return bad("--cpus '%s' is not a CPU list (e.g. 0,2,4-7)", optarg);
			break;
		case OPT_TIME:
			if (parse_secs(optarg, &o->time_s) || o->time_s <= 0)
				return bad("--time '%s' is not a positive number of seconds",
					   optarg);
			time_set = true;
			break;
		case OPT_WARMUP:
			if (parse_secs(optarg, &o->warmup_s))
				return bad("--warmup '%s' is not a number of seconds", optarg);
			break;
		case OPT_IOCOUNT:
			if (parse_u64(optarg, 1, UINT64_MAX / 2, &o->io_count))
				return bad("--io-count '%s' is not a positive count", optarg);
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case OPT_NODBBUF:
			o->no_dbbuf = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_PROGRESS:
			o->progress = true;
			progress_set = true;
			break;
		case OPT_NOPROGRESS:
			o->progress = false;
			progress_set = true;
			break;
		case OPT_STEPPED:
			o->sim_stepped = true;
			break;
		case OPT_TRIM:
			if (parse_u64(optarg, 0, 100, &v))
				return bad("--trim '%s' is not a percentage (0..100)", optarg);
			o->trim = (unsigned)v;
			break;
		case OPT_PCTS:
			if (parse_pcts(optarg, o))
				return bad("--percentiles '%s' is not a list of 1 to 16 "
					   "percentiles in (0, 100] with distinct keys (1.5 and "
					   "15 are both p15; 99 twice is one), e.g. 50,99,99.9",
					   optarg);
			break;
		case OPT_OUTPUT:
			if (!*optarg)
				return bad("--output needs a file name%s", "");
			o->output = optarg;
			break;
		case OPT_STATUS:
			if (parse_secs(optarg, &o->status_interval) || o->status_interval < 0.1)
				return bad(
				    "--status-interval '%s' is not a number of seconds (0.1 or "
				    "more)",
				    optarg);
			break;
		case OPT_LOOP:
			if (!strcmp(optarg, "callback"))
				o->loop_cb = true;
			else if (!strcmp(optarg, "batch"))
				o->loop_cb = false;
			else
				return bad("--loop '%s' is not callback or batch", optarg);
			break;
		case OPT_LAZYCQ:
			o->lazy_cq = true;
			break;
		case OPT_QSIZE:
			if (parse_u64(optarg, 2, 65535, &v))
				return bad("--queue-size '%s' is not a queue size (2..65535)",
					   optarg);
			o->queue_size = (uint32_t)v;
			break;
		case OPT_CQSIZE:
			if (parse_u64(optarg, 2, 65535, &v))
				return bad("--cq-size '%s' is not a queue size (2..65535)", optarg);
			o->cq_size = (uint32_t)v;
			break;
		case OPT_IDLESLEEP:
			if (parse_u64(optarg, 0, 100000, &v))
				return bad("--idle-sleep '%s' is not a number of microseconds "
					   "(0..100000)",
					   optarg);
			o->idle_sleep_us = (uint32_t)v;
			break;
		case OPT_IRQ:
			o->irq = true;
			break;
		case OPT_HYBRID:
			if (parse_u64(optarg, 1, 1000000, &v))
				return bad(
				    "--hybrid '%s' is not a number of microseconds to spin "
				    "before sleeping (1..1000000; --irq alone does not spin)",
				    optarg);
			o->irq = true;
			o->spin_us = (uint32_t)v;
			break;
		case OPT_IRQAGGR:
			if (parse_u64(optarg, 1, 256, &v))
				return bad("--irq-aggr '%s' is not a number of completions per "
					   "interrupt (1..256)",
					   optarg);
			o->irq_aggr = (uint16_t)v;
			break;
		case OPT_IRQAGGRUS:
			if (parse_u64(optarg, 1, 25500, &v))
				return bad("--irq-aggr-us '%s' is not a number of microseconds "
					   "(1..25500, used in steps of 100)",
					   optarg);
			o->irq_aggr_us = (uint16_t)v;
			break;
		case OPT_RATE:
			if (parse_u64(optarg, 1, 100000000, &v))
				return bad("--rate '%s' is not a number of I/Os per second "
					   "(1..100000000)",
					   optarg);
			o->rate = v;
			break;
		case OPT_NOPTHREAD:
			o->no_progress_thread = true;
			break;
		case OPT_SIM_MS:
			if (parse_u64(optarg, 1, 64, &v))
				return bad("--sim-ms '%s' is not a metadata size (1..64 bytes)",
					   optarg);
			o->sim_ms = (uint16_t)v;
			break;
		case OPT_SIM_PI:
			if (parse_u64(optarg, 1, 3, &v))
				return bad("--sim-pi '%s' is not a PI type (1, 2 or 3)", optarg);
			o->sim_pi = (uint8_t)v;
			break;
		case OPT_SIM_EXT:
			o->sim_extended = true;
			break;
		case OPT_SIM_PI_FIRST:
			o->sim_pi_first = true;
			break;
		case OPT_SIM_GUARD64:
			o->sim_guard64 = true;
			break;
		case OPT_MD:
			o->md = true;
			break;
		case OPT_PI:
			if (!strcmp(optarg, "host"))
				o->pi = PERF_PI_HOST;
			else if (!strcmp(optarg, "pract"))
				o->pi = PERF_PI_PRACT;
			else
				return bad("--pi '%s' is neither 'host' nor 'pract'", optarg);
			o->md = true;
			break;
		case 'h':
		case OPT_HELP:
			fputs(usage_text, stdout);
			return -1;
		default:
			if (optopt && optopt < 256)
				return bad("unknown option '-%c'", (char[]){(char)optopt, 0});
			return bad("unknown option or missing value in '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!o->ndev)
		return bad("no controller: give --device BDF or --device sim%s", "");
	if (o->trim && o->verify)
		return bad("--trim leaves blocks undefined: it cannot go with --verify%s", "");
	/* --verify checks reads of blocks this run wrote: a run that only reads
	 * or only writes would check nothing and say it passed. */
	if (o->verify && o->rw != PERF_RANDRW) {
		char m[64];

		snprintf(m, sizeof(m), "%s only %s", perf_rw_name(o->rw),
			 o->rw == PERF_READ || o->rw == PERF_RANDREAD ? "reads" : "writes");
		return bad("--verify checks the reads of blocks this run wrote, but --rw %s: "
			   "use --rw randrw --verify (it writes blocks and reads them back; --mix "
			   "sets the share of reads)",
			   m);
	}
	if (o->trim && o->md)
		return bad("--trim leaves metadata undefined: it cannot go with --md or --pi%s",
			   "");
	if (o->sim_pi && o->sim_ms < 8)
		return bad("--sim-pi needs 8 or more metadata bytes: give --sim-ms 8 (or more)%s",
			   "");
	if ((o->sim_extended || o->sim_pi_first) && !o->sim_ms)
		return bad("%s needs metadata: give --sim-ms",
			   o->sim_extended ? "--sim-extended" : "--sim-pi-first");
	if (o->sim_pi_first && !o->sim_pi)
		return bad("--sim-pi-first places the PI: it needs --sim-pi%s", "");
	if (o->sim_guard64 && (!o->sim_pi || o->sim_ms < 16))
		return bad("--sim-guard64 is a PI format of 16 bytes: it needs --sim-pi and "
			   "--sim-ms 16 (or more)%s",
			   "");
	if (mix_set && o->rw != PERF_RANDRW)
		return bad("--mix only applies to --rw randrw%s", "");
	if (o->rw == PERF_READ || o->rw == PERF_RANDREAD)
		o->mix = 100;
	else if (o->rw == PERF_WRITE || o->rw == PERF_RANDWRITE)
		o->mix = 0;
	if (!batch_set)
		o->batch = o->qd < 8 ? o->qd : 8;
	if (o->batch > o->qd) {
		char b[32];
		snprintf(b, sizeof(b), "%u", o->batch);
		return bad("--batch %s is larger than --qd", b);
	}
	if (o->queue_size && o->queue_size < o->qd + 1) {
		char b[32];
		snprintf(b, sizeof(b), "%u", o->queue_size);
		return bad("--queue-size %s is too small: a queue of N entries holds N - 1 "
			   "commands; give at least --qd + 1",
			   b);
	}
	if (o->cq_size && o->cq_size < (o->queue_size ? o->queue_size : o->qd + 1)) {
		char b[64];
		snprintf(b, sizeof(b), "%u is smaller than the queue's %u entries", o->cq_size,
			 o->queue_size ? o->queue_size : o->qd + 1);
		return bad("--cq-size %s (--queue-size, or --qd + 1)", b);
	}
	if ((o->irq_aggr || o->irq_aggr_us) && !o->irq)
		return bad("%s coalesces interrupts: it needs --irq or --hybrid",
			   o->irq_aggr ? "--irq-aggr" : "--irq-aggr-us");
	if (o->irq && o->idle_sleep_us)
		return bad("--idle-sleep naps between polls: with %s the wait sleeps instead; "
			   "give one of them",
			   o->spin_us ? "--hybrid" : "--irq");
	if (o->io_count && !time_set)
		o->time_s = 0;
	if (o->io_count && o->io_count < (uint64_t)o->ndev * o->qpairs) {
		return bad("--io-count is smaller than the number of qpairs%s", "");
	}
	if (o->no_progress_thread && (o->progress || o->status_interval))
		return bad("--no-progress-thread cannot go with --progress or "
			   "--status-interval%s",
			   "");
	if (!progress_set && !o->no_progress_thread)
		o->progress =
		    isatty(STDOUT_FILENO) && !o->json && !o->output && !o->status_interval;
	return 0;
}
