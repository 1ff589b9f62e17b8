/* sud_thread.c - process set-up, per-thread arming, fork, and thunk memory.
 *
 * Not signal context, no Python: plain C that the glue (arm.c, guest.c) calls.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sud.h"

__attribute__((tls_model("initial-exec"))) __thread struct sud_thread *sud_self;
uint64_t sud_xsave_size, sud_xsave_mask, sud_xsave_std_size;
int sud_have_fsgsbase;
int sud_have_xsavec;
uint64_t sud_user_cs, sud_user_ss;
uint32_t sud_mxcsr_default = 0x1f80;

static pthread_key_t thread_key;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int initialised;

int sud_prctl_raw(long op, long offset, long len, void *selector)
{
    long r = syscall(SYS_prctl, SUD_PR_SET_SYSCALL_USER_DISPATCH, op, offset, len, selector);
    if (r == 0)
        sud_rewrite_prctl_done(op, offset, len, selector);
    return r < 0 ? -errno : 0;
}

static void thread_free(void *arg)
{
    struct sud_thread *t = arg;
    if (!t)
        return;
    if (t->op != SUD_OP_OFF)
        sud_prctl_raw(SUD_OP_OFF, 0, 0, NULL);
    t->op = SUD_OP_OFF;
    sigaltstack(&t->old_altstack, NULL);
    if (t->policy)
        sud_policy_decref(t->policy);
    munmap(t->dstack_lo - 4096, SUD_DSTACK_SIZE + 4096);
    t->magic = 0;
    sud_self = NULL;
    munmap(t, SUD_AREA_SIZE);
}

/* A forked child has one thread, disarmed by the kernel: arm it again as it
 * was, so the child matches what the user armed. */
void sud_rearm_after_fork(void)
{
    struct sud_thread *t = sud_self;
    if (t && t->group)
        t->gpid = getpid(); /* its program, if it runs one, is now the child's */
    if (t && t->op != SUD_OP_OFF) {
        t->tid = (int)syscall(SYS_gettid);
        sud_debug("re-arming the child of a fork");
        if (sud_prctl_raw(t->op, (long)t->offset, (long)t->len, (void *)&t->selector) != 0) {
            static const char msg[] = "pysud: could not re-arm the forked child\n";
            if (write(2, msg, sizeof msg - 1) < 0) {
            }
        }
    }
}

static int find_hazards(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (!strstr(name, "/libc.so") && !strstr(name, "/ld-linux") && !strstr(name, "libc.so.6"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum && sud_nhazard < 4; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            sud_hazard_lo[sud_nhazard] = info->dlpi_addr + ph->p_vaddr;
            sud_hazard_hi[sud_nhazard] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
            sud_nhazard++;
        }
    }
    return 0;
}

/* Install one of the core's handlers with the gate's restorer: its return
 * (rt_sigreturn) then always runs directly, whatever the selector says. */
int sud_install_handler(int sig, void (*h)(int, siginfo_t *, void *), unsigned long flags, uint64_t mask,
                        struct sigaction *old)
{
    if (old && sigaction(sig, NULL, old) != 0)
        return -errno;
    struct sud_kaction k = {(uint64_t)h, SA_SIGINFO | SA_ONSTACK | 0x04000000ul /* SA_RESTORER */ | flags,
                            (uint64_t)sud_gate_restorer, mask};
    long r = sud_gate_syscall6(SYS_rt_sigaction, sig, (long)&k, 0, 8, 0, 0);
    return r < 0 ? (int)r : 0;
}

int sud_init(void)
{
    pthread_mutex_lock(&init_lock);
    if (initialised) {
        pthread_mutex_unlock(&init_lock);
        return 0;
    }
    const char *dbg = getenv("PYSUD_DEBUG");
    sud_debug_enabled = dbg && *dbg && strcmp(dbg, "0") != 0;

    unsigned a, b, c, d;
    __cpuid_count(1, 0, a, b, c, d);
    if (!(c & (1u << 27))) { /* OSXSAVE */
        pthread_mutex_unlock(&init_lock);
        return -ENOTSUP;
    }
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    sud_xsave_mask = ((uint64_t)hi << 32) | lo;
    __cpuid_count(0xd, 0, a, b, c, d);
    sud_xsave_size = (b + 63) & ~63u;
    sud_xsave_std_size = b;
    __cpuid_count(0xd, 1, a, b, c, d);
    sud_have_xsavec = (a & 2) != 0 && !(getenv("PYSUD_NO_XSAVEC"));
    sud_have_fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0;
    uint16_t cs, ss;
    __asm__ volatile("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
    sud_user_cs = cs;
    sud_user_ss = ss;
    dl_iterate_phdr(find_hazards, NULL);

    struct sigaction old;
    int r = sud_install_handler(SIGSYS, sud_sigsys_handler, SA_RESTART, 0, &old);
    if (r) {
        pthread_mutex_unlock(&init_lock);
        return r;
    }
    if (old.sa_sigaction != sud_sigsys_handler)
        sud_set_chained(&old);
    /* no SA_RESTART: blocking calls return EINTR */
    r = sud_install_handler(SUD_SIG_KICK, sud_kick_handler, 0, 0, NULL);
    if (r) {
        pthread_mutex_unlock(&init_lock);
        return r;
    }
    pthread_key_create(&thread_key, thread_free);
    pthread_atfork(NULL, NULL, sud_rearm_after_fork);
    initialised = 1;
    pthread_mutex_unlock(&init_lock);
    return 0;
}

static struct sud_thread *thread_new(void)
{
    /* An area aligned to its own size: the SIGSYS handler finds the state
     * from the signal stack pointer the kernel reports. */
    char *raw = mmap(NULL, 2 * SUD_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t base = ((uintptr_t)raw + SUD_AREA_SIZE - 1) & ~(uintptr_t)(SUD_AREA_SIZE - 1);
    if (base > (uintptr_t)raw)
        munmap(raw, base - (uintptr_t)raw);
    munmap((char *)base + SUD_AREA_SIZE, (uintptr_t)raw + 2 * SUD_AREA_SIZE - base - SUD_AREA_SIZE);
    struct sud_thread *t = (struct sud_thread *)base;

    char *ds = mmap(NULL, SUD_DSTACK_SIZE + 4096, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (ds == MAP_FAILED) {
        munmap(t, SUD_AREA_SIZE);
        return NULL;
    }
    mprotect(ds, 4096, PROT_NONE); /* guard page */
    t->magic = SUD_THREAD_MAGIC;
    t->selector = SUD_FILTER_ALLOW;
    t->ssp = t->shadow;
    t->ssp_end = t->shadow + 3 * SUD_SHADOW_ENTRIES;
    t->dstack_lo = ds + 4096;
    t->dstack_hi = ds + 4096 + SUD_DSTACK_SIZE;
    t->tid = (int)syscall(SYS_gettid);
    t->virt_altstack.ss_flags = SS_DISABLE;

    size_t hdr = (sizeof(struct sud_thread) + 4095) & ~4095ul;
    stack_t ss = {.ss_sp = (char *)t + hdr, .ss_size = SUD_AREA_SIZE - hdr, .ss_flags = 0};
    if (sigaltstack(&ss, &t->old_altstack) != 0) {
        int e = errno;
        munmap(ds, SUD_DSTACK_SIZE + 4096);
        munmap(t, SUD_AREA_SIZE);
        errno = e;
        return NULL;
    }
    sud_self = t;
    pthread_setspecific(thread_key, t);
    sud_rewrite_thread_new(t);
    return t;
}

int sud_arm(int op, uint64_t offset, uint64_t len, struct sud_policy *p)
{
    int r = sud_init();
    if (r)
        return r;
    struct sud_thread *t = sud_self;
    if (!t) {
        t = thread_new();
        if (!t)
            return -errno;
    }
    r = sud_prctl_raw(op, (long)offset, (long)len, (void *)&t->selector);
    if (r) {
        sud_debug("arming failed");
        return r;
    }
    sud_debug(op == SUD_OP_INCLUSIVE_ON ? "armed a thread (inclusive)" : "armed a thread (exclusive)");
    t->op = op;
    t->offset = offset;
    t->len = len;
    uint64_t g = (uint64_t)sud_gate_start, ge = (uint64_t)sud_gate_end;
    int inside = g - offset < len && ge - 1 - offset < len;
    int outside = (g - offset >= len) && (ge - 1 - offset >= len);
    t->gate_allowed = op == SUD_OP_EXCLUSIVE_ON ? inside : outside;
    t->host_fs = sud_get_fs();
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    if (t->policy)
        sud_policy_decref(t->policy);
    t->policy = p;
    return 0;
}

int sud_disarm(void)
{
    struct sud_thread *t = sud_self;
    int r = sud_prctl_raw(SUD_OP_OFF, 0, 0, NULL);
    if (t && r == 0) {
        t->op = SUD_OP_OFF;
        t->selector = SUD_FILTER_ALLOW;
        if (t->policy)
            sud_policy_decref(t->policy);
        t->policy = NULL;
    }
    return r;
}

struct sud_policy *sud_policy_new(void)
{
    struct sud_policy *p = calloc(1, sizeof *p);
    if (p)
        p->refs = 1;
    return p;
}

void sud_policy_decref(struct sud_policy *p)
{
    if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        if (p->trace) {
            munmap(p->trace->data, p->trace->size);
            munmap(p->trace, sizeof *p->trace);
        }
        free(p);
    }
}

/* ---- thunks: written through a RW view, executed through a RX view ---- */
#define THUNK_SIZE 48
#define THUNK_POOL (64 * 1024)
static pthread_mutex_t thunk_lock = PTHREAD_MUTEX_INITIALIZER;
static char *thunk_rw, *thunk_rx;
static size_t thunk_used = THUNK_POOL;

void *sud_thunk_new(uint64_t target, struct sud_policy *p)
{
    pthread_mutex_lock(&thunk_lock);
    if (thunk_used + THUNK_SIZE > THUNK_POOL) {
        int fd = (int)syscall(SYS_memfd_create, "pysud-thunks", 1 /* MFD_CLOEXEC */);
        if (fd < 0 || ftruncate(fd, THUNK_POOL) != 0) {
            pthread_mutex_unlock(&thunk_lock);
            return NULL;
        }
        char *rw = mmap(NULL, THUNK_POOL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        char *rx = mmap(NULL, THUNK_POOL, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
        close(fd);
        if (rw == MAP_FAILED || rx == MAP_FAILED) {
            pthread_mutex_unlock(&thunk_lock);
            return NULL;
        }
        thunk_rw = rw;
        thunk_rx = rx;
        thunk_used = 0;
    }
    unsigned char *c = (unsigned char *)thunk_rw + thunk_used;
    uint64_t common = (uint64_t)sud_thunk_common, pol = (uint64_t)p;
    c[0] = 0x49, c[1] = 0xbb; /* movabs $target, %r11 */
    memcpy(c + 2, &target, 8);
    c[10] = 0x49, c[11] = 0xba; /* movabs $policy, %r10 */
    memcpy(c + 12, &pol, 8);
    c[20] = 0xff, c[21] = 0x25; /* jmp *0(%rip) */
    memset(c + 22, 0, 4);
    memcpy(c + 26, &common, 8);
    void *rx = thunk_rx + thunk_used;
    thunk_used += THUNK_SIZE;
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED); /* thunks live as long as the process */
    pthread_mutex_unlock(&thunk_lock);
    return rx;
}

__attribute__((noreturn)) void sud_thunk_fatal_unarmed(void)
{
    static const char m[] = "pysud: a wrapped function was called on a thread pysud has not armed\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    abort();
}

__attribute__((noreturn)) void sud_thunk_fatal_depth(void)
{
    static const char m[] = "pysud: wrapped calls nested deeper than the shadow stack\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    abort();
}
