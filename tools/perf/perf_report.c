/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-perf: results, per qpair and in total, as YAML-like text
 * ("key: value  # meaning") or as one JSON object.
 *
 * Denominators: submit cost per command submitted, completion cost per
 * completion reaped (with --irq: per completion a wait reaped without
 * sleeping or spinning, the only ones timed), SQ doorbells and shadow SQ updates per command
 * submitted, CQ doorbells and shadow CQ updates per completion reaped (the
 * library's own counters over the measured interval).
 *
 * CPU time: getrusage(RUSAGE_THREAD) of each I/O thread, from the start of
 * the measure to the end of its drain (the setup, the warm-up and the other
 * threads, main and the sim's, are not in it), summed over the I/O
 * threads; per measured I/O, and in % of one CPU over the measured time.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "json.h"
#include "perf.h"

struct perf_sum {
	struct perf_hist hist[3]; /* reads, writes, trims */
	uint64_t ios, reads, writes, trims, errors, mismatches, verified, abandoned;
	uint64_t submit_tsc, complete_tsc, submit_calls, ring_calls, polls, polls_hit, preempted;
	uint64_t tsc_reads;
	uint64_t submitted, completed, sq_db, cq_db, shadow_sq, shadow_cq;
	uint64_t tsc_start, tsc_stop;
	uint64_t usr_us, sys_us; /* CPU time of the I/O threads over the measure */
	uint64_t reaped_untimed, pace_sleeps;
	struct upcie_nvme_qpair_wait_stats ws; /* --irq: over the measure */
	size_t qpair_bytes, qpair_bytes_max;
};

static uint64_t tv_us(const struct timeval *a, const struct timeval *b)
{
	int64_t d = ((int64_t)b->tv_sec - a->tv_sec) * 1000000 + (b->tv_usec - a->tv_usec);

	return d > 0 ? (uint64_t)d : 0;
}

static void add_thread(struct perf_sum *s, const struct perf_thread *t)
{
	for (int d = 0; d < 3; d++)
		perf_hist_merge(&s->hist[d], &t->hist[d]);
	s->ios += t->ios;
	s->reads += t->reads;
	s->writes += t->writes;
	s->trims += t->trims;
	s->errors += t->errors;
	s->abandoned += t->abandoned;
	s->mismatches += t->mismatches;
	s->verified += t->verified;
	s->submit_tsc += t->submit_tsc;
	s->complete_tsc += t->complete_tsc;
	s->submit_calls += t->submit_calls;
	s->ring_calls += t->ring_calls;
	s->polls += t->polls;
	s->polls_hit += t->polls_hit;
	s->tsc_reads += t->tsc_reads;
	s->preempted += t->preempted;
	s->submitted += t->st1.submitted - t->st0.submitted;
	s->completed += t->st1.completed - t->st0.completed;
	s->sq_db += t->st1.sq_doorbells - t->st0.sq_doorbells;
	s->cq_db += t->st1.cq_doorbells - t->st0.cq_doorbells;
	s->shadow_sq += t->st1.shadow_sq - t->st0.shadow_sq;
	s->shadow_cq += t->st1.shadow_cq - t->st0.shadow_cq;
	s->reaped_untimed += t->reaped_untimed;
	s->pace_sleeps += t->pace_sleeps;
	s->ws.waits += t->ws1.waits - t->ws0.waits;
	s->ws.sleeps += t->ws1.sleeps - t->ws0.sleeps;
	s->ws.wakeups += t->ws1.wakeups - t->ws0.wakeups;
	s->ws.empty += t->ws1.empty - t->ws0.empty;
	s->ws.spin_hits += t->ws1.spin_hits - t->ws0.spin_hits;
	s->usr_us += tv_us(&t->ru0.ru_utime, &t->ru1.ru_utime);
	s->sys_us += tv_us(&t->ru0.ru_stime, &t->ru1.ru_stime);
	if (!s->tsc_start || t->tsc_start < s->tsc_start)
		s->tsc_start = t->tsc_start;
	if (t->tsc_stop > s->tsc_stop)
		s->tsc_stop = t->tsc_stop;
	s->qpair_bytes += upcie_nvme_qpair_mem(t->qp);
	if (upcie_nvme_qpair_mem(t->qp) > s->qpair_bytes_max)
		s->qpair_bytes_max = upcie_nvme_qpair_mem(t->qp);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0.0;
}

/* Latency of one histogram, ns: min, avg, max and the --percentiles. */
struct perf_lat {
	double min, avg, max;
	double p[PERF_MAX_PCTS];
};

/* One direction (reads, writes or trims) on its own. */
struct perf_dir {
	uint64_t ios;
	double iops, mib_s;
	struct perf_lat lat;
};

struct perf_figs {
	double secs, iops, mib_s;
	struct perf_lat lat;
	struct perf_dir dir[3];			  /* reads, writes, trims */
	double usr_pct, sys_pct, cpu_pct, cpu_us; /* cpu_us: usr + sys per I/O */
	double sleeps;				  /* --irq: sleeps in waits per I/O */
	double submit_ns, complete_ns;
	double sq_db, cq_db, shadow_sq, shadow_cq, db, per_poll;
	double polls, empty_polls, tsc_reads; /* per I/O completed */
};

static const char *const dir_names[3] = {"read", "write", "trim"};

static void lat_figs(const struct perf_opts *o, const struct perf_hist *h, struct perf_lat *l)
{
	l->min = h->count ? perf_ns((double)h->min) : 0;
	l->avg = h->count ? perf_ns((double)h->sum / (double)h->count) : 0;
	l->max = h->count ? perf_ns((double)h->max) : 0;
	for (unsigned i = 0; i < o->npcts; i++)
		l->p[i] = h->count ? perf_ns((double)perf_hist_percentile(h, o->pcts[i])) : 0;
}

static void figures(const struct perf_opts *o, const struct perf_sum *s, struct perf_figs *f)
{
	static struct perf_hist both; /* large: off the stack */

	memset(f, 0, sizeof(*f));
	f->secs = (double)(s->tsc_stop - s->tsc_start) / perf_clock.hz;
	f->iops = ratio((double)s->ios, f->secs);
	/* Bytes moved: reads and writes; a trim (deallocate) moves none. */
	f->mib_s = ratio((double)(s->reads + s->writes), f->secs) * (double)o->bs / 1048576.0;
	perf_hist_init(&both);
	for (int d = 0; d < 3; d++)
		perf_hist_merge(&both, &s->hist[d]);
	lat_figs(o, &both, &f->lat);
	for (int d = 0; d < 3; d++) {
		f->dir[d].ios = d == 2 ? s->trims : d ? s->writes : s->reads;
		f->dir[d].iops = ratio((double)f->dir[d].ios, f->secs);
		f->dir[d].mib_s = d == 2 ? 0 : f->dir[d].iops * (double)o->bs / 1048576.0;
		lat_figs(o, &s->hist[d], &f->dir[d].lat);
	}
	f->usr_pct = ratio((double)s->usr_us / 1e4, f->secs);
	f->sys_pct = ratio((double)s->sys_us / 1e4, f->secs);
	f->cpu_pct = f->usr_pct + f->sys_pct;
	f->cpu_us = ratio((double)(s->usr_us + s->sys_us), (double)s->ios);
	f->sleeps = ratio((double)s->ws.sleeps, (double)s->ios);
	f->submit_ns = perf_ns(ratio((double)s->submit_tsc, (double)s->submit_calls));
	f->complete_ns = perf_ns(ratio(
	    (double)s->complete_tsc,
	    (double)(s->completed > s->reaped_untimed ? s->completed - s->reaped_untimed : 0)));
	f->sq_db = ratio((double)s->sq_db, (double)s->submitted);
	f->cq_db = ratio((double)s->cq_db, (double)s->completed);
	f->shadow_sq = ratio((double)s->shadow_sq, (double)s->submitted);
	f->shadow_cq = ratio((double)s->shadow_cq, (double)s->completed);
	f->db = ratio((double)(s->sq_db + s->cq_db), (double)s->completed);
	f->per_poll = ratio((double)s->completed, (double)s->polls_hit);
	f->polls = ratio((double)s->polls, (double)s->completed);
	f->empty_polls = ratio((double)(s->polls - s->polls_hit), (double)s->completed);
	f->tsc_reads = ratio((double)s->tsc_reads, (double)s->completed);
}

/* JSON key of a percentile: "p" and its digits, 99.9 -> "p999", 50 -> "p50". */
void perf_pct_key(double p, char *buf, size_t len)
{
	char num[32];
	size_t w = 0;

	snprintf(num, sizeof(num), "%.9g", p);
	for (const char *c = num; *c && w + 2 < len; c++)
		if (*c != '.')
			buf[1 + w++] = *c;
	buf[0] = 'p';
	buf[1 + w] = '\0';
}

/* Text: "850 ns", "12.34 us", "1.20 ms", "2.00 s". */
static void human_ns(double ns, char *buf, size_t len)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.2f \u00b5s", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", ns / 1e9);
}

static void json_lat(struct tool_json *j, const char *key, const struct perf_opts *o,
		     const struct perf_lat *l)
{
	char k[32];

	tool_json_obj(j, key);
	tool_json_double(j, "min", l->min, 0);
	tool_json_double(j, "avg", l->avg, 0);
	tool_json_double(j, "max", l->max, 0);
	for (unsigned i = 0; i < o->npcts; i++) {
		perf_pct_key(o->pcts[i], k, sizeof(k));
		tool_json_double(j, k, l->p[i], 0);
	}
	tool_json_obj_end(j);
}

static void text_lat(const struct perf_opts *o, const struct perf_lat *l)
{
	char v[32];

	human_ns(l->min, v, sizeof(v));
	printf("{min: %s", v);
	human_ns(l->avg, v, sizeof(v));
	printf(", avg: %s", v);
	human_ns(l->max, v, sizeof(v));
	printf(", max: %s", v);
	for (unsigned i = 0; i < o->npcts; i++) {
		human_ns(l->p[i], v, sizeof(v));
		printf(", p%g: %s", o->pcts[i], v);
	}
	printf("}");
}

/* The figures of a run or of one qpair, as members of the open object. */
static void json_figs(struct tool_json *j, const struct perf_opts *o, const struct perf_sum *s,
		      const struct perf_figs *f)
{
	tool_json_double(j, "runtime_s", f->secs, 6);
	tool_json_uint(j, "ios", s->ios);
	tool_json_uint(j, "reads", s->reads);
	tool_json_uint(j, "writes", s->writes);
	tool_json_uint(j, "trims", s->trims);
	tool_json_double(j, "iops", f->iops, 1);
	tool_json_double(j, "bw_mib_s", f->mib_s, 3);
	json_lat(j, "lat_ns", o, &f->lat);
	for (int d = 0; d < 3; d++) {
		tool_json_obj(j, dir_names[d]);
		tool_json_uint(j, "ios", f->dir[d].ios);
		tool_json_double(j, "iops", f->dir[d].iops, 1);
		tool_json_double(j, "bw_mib_s", f->dir[d].mib_s, 3);
		json_lat(j, "lat_ns", o, &f->dir[d].lat);
		tool_json_obj_end(j);
	}
	tool_json_obj(j, "cpu");
	tool_json_double(j, "usr_pct", f->usr_pct, 2);
	tool_json_double(j, "sys_pct", f->sys_pct, 2);
	tool_json_double(j, "pct", f->cpu_pct, 2);
	tool_json_double(j, "us_per_io", f->cpu_us, 3);
	tool_json_uint(j, "usr_us", s->usr_us);
	tool_json_uint(j, "sys_us", s->sys_us);
	tool_json_obj_end(j);
	tool_json_double(j, "cpu_us_per_io", f->cpu_us, 3);
	if (o->irq) {
		tool_json_obj(j, "wait");
		tool_json_uint(j, "waits", s->ws.waits);
		tool_json_uint(j, "sleeps", s->ws.sleeps);
		tool_json_uint(j, "wakeups", s->ws.wakeups);
		tool_json_uint(j, "empty", s->ws.empty);
		tool_json_uint(j, "spin_hits", s->ws.spin_hits);
		tool_json_double(j, "sleeps_per_io", f->sleeps, 4);
		tool_json_uint(j, "reaped_untimed", s->reaped_untimed);
		tool_json_uint(j, "rate_sleeps", s->pace_sleeps);
		tool_json_obj_end(j);
	}
	tool_json_double(j, "submit_ns_per_io", f->submit_ns, 2);
	tool_json_double(j, "complete_ns_per_io", f->complete_ns, 2);
	tool_json_double(j, "driver_ns_per_io", f->submit_ns + f->complete_ns, 2);
	tool_json_double(j, "sq_doorbells_per_io", f->sq_db, 4);
	tool_json_double(j, "cq_doorbells_per_io", f->cq_db, 4);
	tool_json_double(j, "doorbells_per_io", f->db, 4);
	tool_json_double(j, "shadow_sq_per_io", f->shadow_sq, 4);
	tool_json_double(j, "shadow_cq_per_io", f->shadow_cq, 4);
	tool_json_double(j, "completions_per_poll", f->per_poll, 2);
	tool_json_uint(j, "polls", s->polls);
	tool_json_uint(j, "polls_hit", s->polls_hit);
	tool_json_double(j, "polls_per_io", f->polls, 3);
	tool_json_double(j, "empty_polls_per_io", f->empty_polls, 3);
	tool_json_double(j, "tsc_reads_per_io", f->tsc_reads, 3);
	tool_json_uint(j, "preempted_intervals", s->preempted);
	tool_json_uint(j, "errors", s->errors);
	tool_json_uint(j, "abandoned", s->abandoned);
	tool_json_uint(j, "verify_mismatches", s->mismatches);
	tool_json_uint(j, "verified", s->verified);
}

static void text_figs(const struct perf_opts *o, const struct perf_sum *s,
		      const struct perf_figs *f, const char *ind)
{
	printf("%sios: %llu  # measured (%llu reads, %llu writes, %llu trims) in %.3f s\n", ind,
	       (unsigned long long)s->ios, (unsigned long long)s->reads,
	       (unsigned long long)s->writes, (unsigned long long)s->trims, f->secs);
	printf("%siops: %.0f\n", ind, f->iops);
	printf("%sbw_mib_s: %.2f\n", ind, f->mib_s);
	printf("%slat: ", ind);
	text_lat(o, &f->lat);
	printf("\n");
	printf("%scpu: {usr: %.1f%%, sys: %.1f%%, total: %.1f%%}  # the I/O threads' CPU time, "
	       "%% of one CPU\n",
	       ind, f->usr_pct, f->sys_pct, f->cpu_pct);
	printf("%scpu_us_per_io: %.3f  # the I/O threads' usr + sys per I/O\n", ind, f->cpu_us);
	if (o->irq) {
		printf("%swait: {waits: %llu, sleeps: %llu, wakeups: %llu, empty: %llu, spin_hits: "
		       "%llu}  # upcie_nvme_qpair_wait() calls, sleeps in the kernel, sleeps an "
		       "interrupt ended, of them finding nothing, answered while spinning\n",
		       ind, (unsigned long long)s->ws.waits, (unsigned long long)s->ws.sleeps,
		       (unsigned long long)s->ws.wakeups, (unsigned long long)s->ws.empty,
		       (unsigned long long)s->ws.spin_hits);
		printf("%ssleeps_per_io: %.4f\n", ind, f->sleeps);
		if (o->rate)
			printf("%srate_sleeps: %llu  # sleeps until the next submission, nothing "
			       "in flight\n",
			       ind, (unsigned long long)s->pace_sleeps);
	}
	for (int d = 0; d < 3; d++) {
		if (!f->dir[d].ios)
			continue;
		printf("%s%s: {ios: %llu, iops: %.0f, bw_mib_s: %.2f, lat: ", ind, dir_names[d],
		       (unsigned long long)f->dir[d].ios, f->dir[d].iops, f->dir[d].mib_s);
		text_lat(o, &f->dir[d].lat);
		printf("}\n");
	}
	printf("%ssubmit_ns_per_io: %.1f  # inside submit calls and ring\n", ind, f->submit_ns);
	printf("%scomplete_ns_per_io: %.1f  # inside %s that reaped, minus callbacks\n", ind,
	       f->complete_ns, o->irq ? "waits (without sleeping or spinning)" : "polls");
	printf("%ssq_doorbells_per_io: %.4f  # SQ tail MMIO writes\n", ind, f->sq_db);
	printf("%scq_doorbells_per_io: %.4f  # CQ head MMIO writes\n", ind, f->cq_db);
	printf("%sshadow_sq_per_io: %.4f  # SQ updates to the shadow doorbell only\n", ind,
	       f->shadow_sq);
	printf("%sshadow_cq_per_io: %.4f  # CQ updates to the shadow doorbell only\n", ind,
	       f->shadow_cq);
	printf("%scompletions_per_poll: %.2f  # in polls that reaped any\n", ind, f->per_poll);
	printf("%spolls_per_io: %.3f  # %s calls per completion (%.3f empty)\n", ind, f->polls,
	       o->irq ? "upcie_nvme_qpair_wait()" : "upcie_nvme_poll()", f->empty_polls);
	printf("%stsc_reads_per_io: %.3f  # of the loop itself, for timing\n", ind, f->tsc_reads);
	printf("%serrors: %llu  # failed commands\n", ind, (unsigned long long)s->errors);
	if (s->abandoned)
		printf("%sabandoned: %llu  # of them: no completion by the drain timeout\n", ind,
		       (unsigned long long)s->abandoned);
	printf("%sverify_mismatches: %llu  # of %llu reads checked\n", ind,
	       (unsigned long long)s->mismatches, (unsigned long long)s->verified);
}

/* Which run this was: version, start time, host, command line (as given,
 * in whatever bytes: the writer keeps the JSON valid UTF-8). */
static void json_run(struct tool_json *j, const struct perf_opts *o)
{
	char ts[32];
	struct utsname u;
	struct tm tm;

	gmtime_r(&o->started, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	tool_json_str(j, "version", upcie_version());
	tool_json_str(j, "timestamp", ts);
	tool_json_int(j, "time_unix", (int64_t)o->started);
	tool_json_str(j, "host", uname(&u) ? "" : u.nodename);
	tool_json_arr(j, "cmdline");
	for (int i = 0; i < o->argc; i++)
		tool_json_str(j, NULL, o->argv[i]);
	tool_json_arr_end(j);
}

static void print_errs(const struct perf_thread *t, FILE *out)
{
	for (unsigned i = 0; i < t->nerr; i++) {
		const struct perf_err *e = &t->err[i];

		if (e->mismatch)
			fprintf(out,
				"upcie-perf: qpair %u: verify mismatch: read of LBA %llu, expected "
				"generation %u, first bad byte at offset %u\n",
				t->idx, (unsigned long long)e->lba, e->expect_gen, e->offset);
		else if (e->status == PERF_ST_REJECTED)
			fprintf(out,
				"upcie-perf: qpair %u: %s of LBA %llu was rejected at submit\n",
				t->idx, dir_names[e->write], (unsigned long long)e->lba);
		else if (e->status == PERF_ST_ABANDONED)
			fprintf(out,
				"upcie-perf: qpair %u: %s of LBA %llu did not complete by the "
				"drain timeout: abandoned\n",
				t->idx, dir_names[e->write], (unsigned long long)e->lba);
		else
			fprintf(out,
				"upcie-perf: qpair %u: %s of LBA %llu failed: status 0x%03x (%s)\n",
				t->idx, dir_names[e->write], (unsigned long long)e->lba, e->status,
				upcie_nvme_status_str(e->status));
	}
	if (t->errors + t->mismatches > t->nerr)
		fprintf(out, "upcie-perf: qpair %u: ... %llu more\n", t->idx,
			(unsigned long long)(t->errors + t->mismatches - t->nerr));
}

/* parts: the most commands an I/O takes on any controller (--bs above MDTS),
 * which the default queue size grows by. */
static void json_options(struct tool_json *j, const struct perf_opts *o, uint32_t parts)
{
	tool_json_obj(j, "options");
	tool_json_arr(j, "devices");
	for (unsigned i = 0; i < o->ndev; i++)
		tool_json_str(j, NULL, o->devices[i]);
	tool_json_arr_end(j);
	tool_json_uint(j, "ns", o->nsid);
	tool_json_str(j, "rw", perf_rw_name(o->rw));
	tool_json_uint(j, "mix", o->mix);
	tool_json_uint(j, "trim", o->trim);
	tool_json_uint(j, "bs", o->bs);
	tool_json_uint(j, "qd", o->qd);
	tool_json_uint(j, "batch", o->batch);
	tool_json_uint(j, "qpairs", o->qpairs);
	tool_json_arr(j, "cpus");
	for (unsigned i = 0; i < o->ncpus; i++)
		tool_json_int(j, NULL, o->cpus[i]);
	tool_json_arr_end(j);
	tool_json_double(j, "time_s", o->time_s, 3);
	tool_json_double(j, "warmup_s", o->warmup_s, 3);
	tool_json_uint(j, "io_count", o->io_count);
	tool_json_bool(j, "verify", o->verify);
	tool_json_bool(j, "no_dbbuf", o->no_dbbuf);
	tool_json_str(j, "loop", o->loop_cb ? "callback" : "batch");
	tool_json_bool(j, "lazy_cq", o->lazy_cq);
	tool_json_uint(j, "queue_size", o->queue_size ? o->queue_size : o->qd * parts + 1);
	tool_json_uint(j, "cq_size", o->cq_size);
	tool_json_uint(j, "idle_sleep_us", o->idle_sleep_us);
	/* main's wake-ups */
	tool_json_bool(j, "progress_thread", o->progress || o->status_interval);
	tool_json_bool(j, "irq", o->irq);
	tool_json_uint(j, "hybrid_us", o->spin_us);
	tool_json_uint(j, "irq_aggr", o->irq_aggr);
	tool_json_uint(j, "irq_aggr_us", o->irq_aggr_us);
	tool_json_uint(j, "rate", o->rate);
	tool_json_obj_end(j);
}

static const char *irq_name(uint32_t kind)
{
	return kind == UPCIE_PCI_IRQ_MSIX ? "msix" : kind == UPCIE_PCI_IRQ_INTX ? "intx" : "none";
}

static void json_devices(struct tool_json *j, struct perf_dev *devs, unsigned ndev)
{
	tool_json_arr(j, "devices");
	for (unsigned d = 0; d < ndev; d++) {
		const struct perf_dev *v = &devs[d];

		tool_json_obj(j, NULL);
		tool_json_str(j, "name", v->name);
		tool_json_str(j, "backend", upcie_pci_backend_name(upcie_pci_backend(v->pci)));
		tool_json_uint(j, "nsid", v->ns->nsid);
		tool_json_uint(j, "lba_size", v->ns->lba_size);
		tool_json_uint(j, "max_xfer_bytes", v->info.max_xfer_bytes);
		tool_json_uint(j, "commands_per_io", v->parts);
		tool_json_bool(j, "dbbuf", v->info.dbbuf);
		tool_json_uint(j, "heap_bytes", v->heap_size);
		tool_json_str(j, "irq", irq_name(v->info.irq_kind));
		tool_json_uint(j, "irq_vectors", v->info.irq_vectors);
		if (v->has_sim_stats) {
			tool_json_obj(j, "sim");
			tool_json_uint(j, "sq_doorbells",
				       v->sim1.sq_doorbells - v->sim0.sq_doorbells);
			tool_json_uint(j, "cq_doorbells",
				       v->sim1.cq_doorbells - v->sim0.cq_doorbells);
			tool_json_uint(j, "shadow_reads",
				       v->sim1.shadow_reads - v->sim0.shadow_reads);
			tool_json_uint(j, "io_cmds", v->sim1.io_cmds - v->sim0.io_cmds);
			tool_json_uint(j, "errors", v->sim1.errors - v->sim0.errors);
			tool_json_obj_end(j);
		}
		tool_json_obj_end(j);
	}
	tool_json_arr_end(j);
}

void perf_report(const struct perf_opts *o, struct perf_dev *devs, unsigned ndev,
		 struct perf_thread *th, unsigned nth)
{
	static struct perf_sum total, one; /* large: keep them off the stack */
	struct tool_json j;
	struct perf_figs f;

	memset(&total, 0, sizeof(total));
	for (int d = 0; d < 3; d++)
		perf_hist_init(&total.hist[d]);
	for (unsigned i = 0; i < nth; i++)
		add_thread(&total, &th[i]);
	figures(o, &total, &f);

	if (o->json) {
		tool_json_init(&j, stdout);
		tool_json_obj(&j, NULL);
		json_run(&j, o);
		uint32_t parts = 1;

		for (unsigned d = 0; d < ndev; d++)
			parts = devs[d].parts > parts ? devs[d].parts : parts;
		json_options(&j, o, parts);
		tool_json_double(&j, "tsc_hz", perf_clock.hz, 0);
		tool_json_double(&j, "lat_error_bound_pct", perf_hist_bound() * 100, 3);
		json_figs(&j, o, &total, &f);
		tool_json_uint(&j, "qpair_bytes", total.qpair_bytes_max);
		tool_json_uint(&j, "qpair_bytes_total", total.qpair_bytes);
		json_devices(&j, devs, ndev);
		tool_json_arr(&j, "qpairs");
	} else {
		printf("upcie-perf: %s, bs %llu, qd %u, batch %u, %u qpair(s) on %u controller(s), "
		       "%s",
		       perf_rw_name(o->rw), (unsigned long long)o->bs, o->qd, o->batch, nth, ndev,
		       o->spin_us ? "hybrid"
		       : o->irq	  ? "interrupts"
				  : "polled");
		if (o->spin_us)
			printf(" (spin %u \u00b5s)", o->spin_us);
		if (o->rate)
			printf(", rate %llu IOPS", (unsigned long long)o->rate);
		printf("\n");
		for (unsigned d = 0; d < ndev; d++) {
			printf("controller %u: %s (%s), nsid %u, lba %u, shadow doorbells %s, "
			       "interrupts %s (%u vectors)",
			       d, devs[d].name,
			       upcie_pci_backend_name(upcie_pci_backend(devs[d].pci)),
			       devs[d].ns->nsid, devs[d].ns->lba_size,
			       devs[d].info.dbbuf ? "on" : "off", irq_name(devs[d].info.irq_kind),
			       devs[d].info.irq_vectors);
			if (devs[d].parts > 1)
				printf(", %u commands per I/O (--bs above MDTS %u)", devs[d].parts,
				       devs[d].info.max_xfer_bytes);
			printf("\n");
		}
		printf("total:\n");
		text_figs(o, &total, &f, "  ");
		printf("  qpair_bytes: %zu  # DMA memory of one qpair (SQ, CQ, PRP lists)\n",
		       total.qpair_bytes_max);
		printf("  lat_error_bound_pct: %.2f  # percentiles, from the histogram buckets\n",
		       perf_hist_bound() * 100);
		/* One qpair's figures are the totals: printed once. */
		if (nth > 1)
			printf("qpairs:\n");
	}
	for (unsigned i = 0; i < nth && (o->json || nth > 1); i++) {
		memset(&one, 0, sizeof(one));
		for (int d = 0; d < 3; d++)
			perf_hist_init(&one.hist[d]);
		add_thread(&one, &th[i]);
		figures(o, &one, &f);
		if (o->json) {
			tool_json_obj(&j, NULL);
			tool_json_uint(&j, "index", i);
			tool_json_str(&j, "device", th[i].dev->name);
			tool_json_uint(&j, "qid", upcie_nvme_qpair_id(th[i].qp));
			tool_json_int(&j, "cpu", th[i].cpu);
			tool_json_uint(&j, "depth", upcie_nvme_qpair_depth(th[i].qp));
			tool_json_uint(&j, "cq_depth", upcie_nvme_qpair_cq_depth(th[i].qp));
			json_figs(&j, o, &one, &f);
			tool_json_uint(&j, "qpair_bytes", one.qpair_bytes);
			tool_json_obj_end(&j);
		} else {
			printf("  - qpair: %u  # %s qid %u%s, %u SQ and %u CQ entries\n", i,
			       th[i].dev->name, upcie_nvme_qpair_id(th[i].qp),
			       th[i].cpu >= 0 ? ", pinned" : "", upcie_nvme_qpair_depth(th[i].qp),
			       upcie_nvme_qpair_cq_depth(th[i].qp));
			text_figs(o, &one, &f, "    ");
			printf("    qpair_bytes: %zu\n", one.qpair_bytes);
		}
	}
	if (o->json) {
		tool_json_arr_end(&j);
		tool_json_obj_end(&j);
		tool_json_done(&j);
	}
	fflush(stdout);
	for (unsigned i = 0; i < nth; i++)
		print_errs(&th[i], stderr);
}
