/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libupcie-preload: unmodified programs doing block I/O on an NVMe
 * namespace through libupcie (LD_PRELOAD). Internal declarations shared by
 * its files:
 *
 *   map.c     UPCIE_PRELOAD parsing, the devices (one shared controller
 *             each), open files and the fd table, fork detection
 *   io.c      synchronous I/O on a thread's own queue pair: alignment rules,
 *             registered or bounced buffers, read-modify-write, flush,
 *             deallocate, write zeroes
 *   reg.c     the registration cache (vfio, sim) and its invalidation when
 *             the program unmaps or frees memory
 *   libc.c    the libc functions it interposes (open, pread, ioctl, ...)
 *   aio.c     libaio's io_setup / io_submit / io_getevents / ...
 *
 * Every fd that is not a mapped path goes to the next definition of the
 * function (libc, libaio) untouched.
 */
#ifndef UPCIE_PRELOAD_H
#define UPCIE_PRELOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <upcie/upcie.h>
#ifdef UPCIE_HAVE_SIM
#include <upcie/sim.h>
#endif

#define PL_NAME	    "libupcie-preload"
#define PL_MAX_MAPS 16
#define PL_MAX_FDS  65536
#define PL_MAX_REGS 64 /* registered regions kept per device (LRU beyond) */
#define PL_CHUNK    (1u << 20)

/* One controller named in the mapping ("sim" or a PCI address). */
struct pl_dev {
	char name[64];
	struct upcie_nvme_ctrl *ctrl; /* NULL while no file is open on it */
	struct upcie_dma_heap *heap;
	struct upcie_sim *sim; /* our own model, for the "sim" device: lives as long as
				  the process, so that data survives a close */
	bool sim_forked;       /* inherited: its thread stayed in the parent */
	enum upcie_pci_backend backend;
	pid_t pid;	  /* the process that opened ctrl */
	unsigned opens;	  /* open files and aio contexts using ctrl */
	unsigned gen;	  /* bumped at every close: queue pairs of older gens are gone */
	bool register_ok; /* try upcie_dma_register for the caller's buffers */
	uint32_t mps;	  /* the controller's memory page size (CC.MPS) */
	uint32_t dirty;	  /* sim: namespaces written (bit nsid - 1), for the image */
	/* The registration cache (reg.c). Readers (a lookup that hits, free()
	 * checking an address) take reg_lock shared; anything that registers,
	 * unregisters or marks a region takes it exclusive. */
	pthread_rwlock_t reg_lock;
	struct pl_reg {
		uintptr_t va;
		size_t len;    /* 0: a free slot */
		uint64_t used; /* reg_clock at its last use (LRU) */
		unsigned pins; /* I/O using it now: never evicted or unregistered */
		bool doomed;   /* the program released the memory: unregistered as
				  soon as nothing uses it, never handed out again */
	} regs[PL_MAX_REGS];
	unsigned nregs;		  /* slots in use, doomed ones included */
	uintptr_t reg_lo, reg_hi; /* bounds of every region: free() looks here first */
	/* The regions sorted by address, for free()'s look without the lock:
	 * written under reg_lock (exclusive) between two increments of seq,
	 * read with a check that seq was even and did not move. ends[i] is
	 * the highest end among the first i + 1 regions. */
	struct {
		unsigned seq, n;
		uintptr_t vas[PL_MAX_REGS], ends[PL_MAX_REGS];
	} reg_sorted;
	uint64_t reg_clock;
	unsigned reg_failures;
};

struct pl_map {
	char path[4096];
	struct pl_dev *dev;
	uint32_t nsid;
	unsigned index;
};

/* An open file description: shared by dup()s, like the kernel's. */
struct pl_file {
	struct pl_map *map;
	struct pl_dev *dev;
	const struct upcie_nvme_ns *ns;
	uint64_t size; /* bytes */
	uint32_t lbs;
	int flags; /* open flags (O_ACCMODE, O_DIRECT, O_SYNC, ...) */
	unsigned refs;
	pid_t pid;
	pthread_mutex_t pos_lock;
	uint64_t pos;
};

/* map.c */
extern pid_t pl_pid;
extern pthread_mutex_t pl_lock;
void pl_init(void);
bool pl_enabled(void);
struct pl_map *pl_lookup_path(int dirfd, const char *path, int *err);
struct pl_file *pl_get(int fd);
int pl_open_map(struct pl_map *m, int flags, int fd);
int pl_fd_close(int fd);
void pl_fd_dup(int oldfd, int newfd);
void pl_fd_forget(int fd);
int pl_check_owner(struct pl_file *f, const char *what);
void pl_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int pl_stat_map(struct pl_map *m, void *st, bool is64);
void pl_dev_unuse(struct pl_dev *d);
struct pl_dev *pl_devs_for_reg(unsigned *n);

/* io.c */
ssize_t pl_rw(struct pl_file *f, void *buf, size_t len, uint64_t off, bool write);
ssize_t pl_rwv(struct pl_file *f, const struct iovec *iov, int iovcnt, uint64_t off, bool write);
int pl_flush(struct pl_file *f);
int pl_discard(struct pl_file *f, uint64_t off, uint64_t len, bool zeroout);
struct upcie_nvme_qpair *pl_thread_qpair(struct pl_dev *d);
void pl_thread_exit(void *arg);
/* A command a reset ended before it ran (HOST_ABORTED, ABORT_SQ_DELETED:
 * "retry is safe") is submitted again, PL_TRIES times at most. */
#define PL_RETRY 2
#define PL_TRIES 4
bool pl_status_retry(uint16_t status);
int pl_wait(struct upcie_nvme_qpair *qp, volatile int *state);
bool pl_direct_ok(struct pl_file *f, const void *buf, size_t len, uint64_t off);
void *pl_thread_bounce(struct pl_dev *d, size_t len);

/* reg.c */
int pl_reg_pin(struct pl_dev *d, const void *buf, size_t len);
void pl_reg_unpin(struct pl_dev *d, int slot);
void pl_reg_drop_all(struct pl_dev *d);
void pl_reg_invalidate(const void *va, size_t len);
void pl_reg_fork_child(void);

/* aio.c */
void pl_aio_close_dev(struct pl_dev *d);

/* The next definitions (libc's) of what libc.c interposes. */
struct pl_real {
	int (*open)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*close)(int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*pread)(int, void *, size_t, off_t);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	int (*munmap)(void *, size_t);
};
extern struct pl_real pl_real;
void *pl_next(const char *name);

#endif /* UPCIE_PRELOAD_H */
