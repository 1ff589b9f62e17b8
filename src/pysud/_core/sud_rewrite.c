/* sud_rewrite.c - below the SIGSYS floor: patch a program's syscall sites so
 * that later calls enter the dispatcher without a kernel trap.
 *
 * After a site traps (sud_dispatch, a trapped frame), and when its bytes are
 * `mov $nr,%eax; syscall` (b8 imm32 0f 05) or `mov $nr,%rax; syscall`
 * (48 c7 c0 imm32 0f 05) with nr the number the kernel reported, the `mov` is
 * replaced by a 5-byte `jmp rel32` to a per-site trampoline near the site:
 *
 *   site:  e9 rel32  [rest of the mov]  0f 05 (the syscall, left in place)
 *   tramp: mov $nr,%eax (the original bytes)
 *          rdgsbase %rcx; jrcxz 1f           no thread block: trap as before
 *          mov LOCATOR(%rcx),%rcx; jrcxz 1f
 *          selector ALLOW (jrcxz on it): 1f  run it natively
 *          lea site_end(%rip),%r11           (RFLAGS untouched all the way)
 *          jmp *sud_direct_entry             the flip-switch entry
 *       1: jmp site+len(mov)                 the original syscall
 *
 * Only the `mov` changes: the `syscall` instruction stays where it was, so a
 * thread that already ran the `mov` when the patch lands, code that jumps
 * straight to the `syscall`, and a thread blocked in the call (its return
 * address is after the syscall) all see the bytes they expect; they trap as
 * before.  The five bytes are written with one 8-byte store that lies inside
 * a cache line (x86 makes such a store atomic: another CPU fetches the old
 * `mov` or the new `jmp`, never a mix); a site whose five bytes cross a cache
 * line keeps trapping.  No stack or red zone is touched on the way in.
 *
 * The thread block comes from the GS base: for Linux code the GS base is the
 * thread block itself (set when the block is made, sud_rewrite_thread_new;
 * LOCATOR = offsetof(self)); for the NT personality it is the TEB and
 * LOCATOR the TEB slot that holds the block.
 *
 * Which code is patched: private, non-writable executable mappings (r-xp in
 * /proc/self/maps) outside the host's own objects (their text ranges are
 * taken when rewriting is switched on).  The trampoline's ALLOW test keeps a
 * patched site right even if host code ran it.  rt_sigreturn (15) sites are
 * never patched: they must run where they are (the SIGSYS handler's rule).
 *
 * Outside signal context, on the dispatch stack, selector ALLOW, host FS; the
 * trapped code's vector state is live, so no vector registers here and no
 * libc calls (the gate's syscalls only).
 */
#define _GNU_SOURCE
#pragma GCC target("general-regs-only")
#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "sud.h"

#define SITE_SLOTS 8192 /* examined sites (open addressing, power of two) */
#define CHUNK_SIZE (64 * 1024)
#define TRAMP_SIZE 64
#define MAX_CHUNKS 256
#define MAX_HOST 512
#define REL32_REACH 0x7ff00000l

enum { SITE_FREE = 0, SITE_PATCHED = 1, SITE_REJECTED = 2 };

struct site {
    uint64_t addr;  /* address of the first byte of the mov */
    uint64_t tramp; /* its trampoline, when patched */
    uint32_t state, nr;
    uint8_t reason, len, pad[6];
};

struct chunk {
    uint64_t base, used;
};

static struct site sites[SITE_SLOTS];
static struct chunk chunks[MAX_CHUNKS];
static int nchunks;
static volatile int lock;
static uint64_t host_lo[MAX_HOST], host_hi[MAX_HOST];
static int nhost;
static uint64_t npatched, nrejected, nskipped_line;

/* Never waited for in dispatch: a fork child may inherit the lock taken
 * (the patching thread is not in the child), so a busy lock means "not now". */
static int lock_try(void) { return !__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE); }
static int lock_take(void)
{
    for (long i = 0; i < 100000000l; i++) {
        if (lock_try())
            return 1;
        __builtin_ia32_pause();
    }
    return 0;
}
static void lock_drop(void) { __atomic_store_n(&lock, 0, __ATOMIC_RELEASE); }

static struct site *site_slot(uint64_t addr, int insert)
{
    uint64_t h = (addr * 0x9e3779b97f4a7c15ull) >> 51; /* 13 bits */
    for (int i = 0; i < SITE_SLOTS; i++) {
        struct site *s = &sites[(h + i) & (SITE_SLOTS - 1)];
        if (s->addr == addr)
            return s;
        if (s->state == SITE_FREE)
            return insert ? s : NULL;
    }
    return NULL;
}

/* ---- host ranges (taken outside dispatch, from the glue) ---- */
void sud_rewrite_set_host(const uint64_t *lo, const uint64_t *hi, int n)
{
    if (!lock_take())
        return;
    if (n > MAX_HOST)
        n = MAX_HOST;
    for (int i = 0; i < n; i++) {
        host_lo[i] = lo[i];
        host_hi[i] = hi[i];
    }
    nhost = n;
    lock_drop();
}

static int in_host(uint64_t a)
{
    for (int i = 0; i < nhost; i++)
        if (a >= host_lo[i] && a < host_hi[i])
            return 1;
    return 0;
}

/* ---- /proc/self/maps: is [lo, hi) inside one r-xp mapping? ---- */
static char mapsbuf[16384];

static uint64_t hexnum(const char **p, const char *end)
{
    uint64_t v = 0;
    while (*p < end) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            break;
        v = v * 16 + (uint64_t)d;
        (*p)++;
    }
    return v;
}

static int private_text(uint64_t lo, uint64_t hi)
{
    long fd = sud_gate_syscall6(SYS_openat, -100, (long)"/proc/self/maps", 0 /* O_RDONLY */, 0, 0, 0);
    if (fd < 0)
        return 0;
    int ok = 0, done = 0;
    size_t have = 0;
    while (!done) {
        long n = sud_gate_syscall6(SYS_read, fd, (long)(mapsbuf + have), (long)(sizeof mapsbuf - have), 0, 0, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        const char *p = mapsbuf, *end = mapsbuf + have, *line = p;
        for (;;) {
            const char *nl = line;
            while (nl < end && *nl != '\n')
                nl++;
            if (nl == end)
                break; /* partial line: keep it for the next read */
            p = line;
            uint64_t start = hexnum(&p, nl);
            p++;
            uint64_t stop = hexnum(&p, nl);
            p++;
            if (lo >= start && lo < stop) {
                ok = hi <= stop && nl - p >= 4 && p[0] == 'r' && p[1] == '-' && p[2] == 'x' && p[3] == 'p';
                done = 1;
                break;
            }
            if (start > lo) {
                done = 1;
                break;
            }
            line = nl + 1;
        }
        size_t keep = (size_t)(end - line);
        for (size_t i = 0; i < keep; i++)
            mapsbuf[i] = line[i];
        have = keep;
        if (have == sizeof mapsbuf)
            break; /* a line longer than the buffer */
    }
    sud_gate_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    return ok;
}

/* ---- trampolines: private RX memory within rel32 reach of the site ---- */
static int reach(uint64_t from, uint64_t to)
{
    long d = (long)(to - from);
    return d > -REL32_REACH && d < REL32_REACH;
}

static uint64_t chunk_map_near(uint64_t site)
{
    uint64_t page = site & ~(uint64_t)(CHUNK_SIZE - 1);
    for (uint64_t step = 1; step < 1800; step++) {
        for (int dir = -1; dir <= 1; dir += 2) {
            uint64_t want = page + (uint64_t)((long)dir * (long)step * (16l << 20));
            if (want < (16ul << 20) || want > 0x7ffffff00000ul)
                continue;
            long r = sud_gate_syscall6(SYS_mmap, (long)want, CHUNK_SIZE, PROT_READ | PROT_EXEC,
                                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (r == (long)want)
                return want;
            if (r > 0 && r > -4096l) /* an old kernel ignored NOREPLACE */
                sud_gate_syscall6(SYS_munmap, r, CHUNK_SIZE, 0, 0, 0, 0);
        }
    }
    return 0;
}

static uint64_t tramp_alloc(uint64_t site)
{
    for (int i = 0; i < nchunks; i++) {
        struct chunk *c = &chunks[i];
        if (c->used + TRAMP_SIZE <= CHUNK_SIZE && reach(site, c->base) && reach(site, c->base + CHUNK_SIZE)) {
            uint64_t t = c->base + c->used;
            c->used += TRAMP_SIZE;
            return t;
        }
    }
    if (nchunks == MAX_CHUNKS)
        return 0;
    uint64_t base = chunk_map_near(site);
    if (!base)
        return 0;
    chunks[nchunks].base = base;
    chunks[nchunks].used = TRAMP_SIZE;
    nchunks++;
    return base;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int make_trampoline(uint8_t *t, uint64_t tramp, uint64_t site, const uint8_t *mov, int len, uint32_t locator)
{
    /* No instruction here changes RFLAGS (jrcxz tests RCX without them): the
     * direct entry saves the flags the program had at its syscall. */
    int n = 0, jr[3];
    for (int i = 0; i < len; i++)
        t[n++] = mov[i];
    static const uint8_t rdgs[] = {0xf3, 0x48, 0x0f, 0xae, 0xc9}; /* rdgsbase %rcx */
    for (unsigned i = 0; i < sizeof rdgs; i++)
        t[n++] = rdgs[i];
    t[n++] = 0xe3; /* jrcxz fallback: no GS base */
    jr[0] = n++;
    t[n++] = 0x48; /* mov locator(%rcx),%rcx */
    t[n++] = 0x8b;
    t[n++] = 0x89;
    put32(t + n, locator);
    n += 4;
    t[n++] = 0xe3; /* jrcxz fallback: no thread block */
    jr[1] = n++;
    static const uint8_t sel[] = {
        0x49, 0x89, 0xcb,             /* mov %rcx,%r11 */
        0x0f, 0xb6, 0x49, T_SELQ,     /* movzbl T_SELQ(%rcx),%ecx */
        0xe3, 0x00,                   /* jrcxz fallback: selector ALLOW */
        0x4c, 0x89, 0xd9,             /* mov %r11,%rcx */
        0x4c, 0x8d, 0x1d,             /* lea rel32(%rip),%r11 */
    };
    jr[2] = n + 8;
    for (unsigned i = 0; i < sizeof sel; i++)
        t[n++] = sel[i];
    uint64_t site_end = site + (uint64_t)len + 2;
    put32(t + n, (uint32_t)(site_end - (tramp + (uint64_t)n + 4)));
    n += 4;
    static const uint8_t jmpind[] = {0xff, 0x25, 0, 0, 0, 0}; /* jmp *0(%rip) */
    for (unsigned i = 0; i < sizeof jmpind; i++)
        t[n++] = jmpind[i];
    uint64_t entry = (uint64_t)sud_direct_entry;
    for (int i = 0; i < 8; i++)
        t[n++] = (uint8_t)(entry >> (8 * i));
    for (int i = 0; i < 3; i++)
        t[jr[i]] = (uint8_t)(n - (jr[i] + 1));
    t[n++] = 0xe9; /* fallback: jmp the original syscall */
    put32(t + n, (uint32_t)(site + (uint64_t)len - (tramp + (uint64_t)n + 4)));
    n += 4;
    return n;
}

static long page_prot(uint64_t lo, uint64_t hi, int prot)
{
    uint64_t a = lo & ~4095ul, b = (hi + 4095) & ~4095ul;
    return sud_gate_syscall6(SYS_mprotect, (long)a, (long)(b - a), prot, 0, 0, 0);
}

/* Match the bytes before the syscall at site_end - 2.  Returns the length of
 * the mov (5 or 7) or 0. */
static int match(const uint8_t *end, uint64_t nr)
{
    if (end[-2] != 0x0f || end[-1] != 0x05)
        return 0;
    const uint8_t *b = end - 7;
    if (b[0] == 0xb8 && (b[1] | b[2] << 8 | b[3] << 16 | (uint32_t)b[4] << 24) == nr)
        return 5;
    b = end - 9;
    if (b[0] == 0x48 && b[1] == 0xc7 && b[2] == 0xc0 && (b[3] | b[4] << 8 | b[5] << 16 | (uint32_t)b[6] << 24) == nr)
        return 7;
    return 0;
}

enum { WHY_PATTERN = 1, WHY_MAPPING, WHY_HOST, WHY_LINE, WHY_SIGRETURN, WHY_ROOM, WHY_PROTECT };

static int try_patch(struct site *s, uint64_t site, const uint8_t *mov, int len, uint32_t locator)
{
    if (in_host(site))
        return WHY_HOST;
    if (s->nr == SYS_rt_sigreturn)
        return WHY_SIGRETURN;
    uint64_t site_end = site + (uint64_t)len + 2;
    if (!private_text(site, site_end))
        return WHY_MAPPING;
    /* One 8-byte store inside a cache line covering the five bytes. */
    uint64_t in_line = site & 63;
    uint64_t w = in_line <= 56 ? site : site - (in_line - 56);
    if (site + 5 > w + 8 || (w & ~63ul) != (site & ~63ul)) {
        nskipped_line++;
        return WHY_LINE;
    }
    uint64_t tramp = tramp_alloc(site);
    if (!tramp)
        return WHY_ROOM;
    uint8_t code[TRAMP_SIZE];
    int n = make_trampoline(code, tramp, site, mov, len, locator);
    if (page_prot(tramp, tramp + (uint64_t)n, PROT_READ | PROT_WRITE | PROT_EXEC))
        return WHY_PROTECT;
    for (int i = 0; i < n; i++)
        ((volatile uint8_t *)tramp)[i] = code[i];
    page_prot(tramp, tramp + (uint64_t)n, PROT_READ | PROT_EXEC);

    if (page_prot(w, w + 8, PROT_READ | PROT_WRITE | PROT_EXEC))
        return WHY_PROTECT;
    uint64_t old = *(volatile uint64_t *)w, neww = old;
    uint8_t jmp[5] = {0xe9};
    put32(jmp + 1, (uint32_t)(tramp - (site + 5)));
    for (int i = 0; i < 5; i++) {
        int sh = (int)(site - w + (uint64_t)i) * 8;
        neww = (neww & ~(0xfful << sh)) | ((uint64_t)jmp[i] << sh);
    }
    __atomic_store_n((volatile uint64_t *)w, neww, __ATOMIC_SEQ_CST);
    page_prot(w, w + 8, PROT_READ | PROT_EXEC);
    s->tramp = tramp;
    return 0;
}

/* A new thread block: the GS base of its thread becomes the block, unless
 * the thread has a GS base of its own (a new thread inherits its creator's,
 * which is the creator's block: a rewritten site must never find that). */
void sud_rewrite_thread_new(struct sud_thread *t)
{
    t->self = t;
    if (!sud_have_fsgsbase)
        return;
    uint64_t gs, magic = 0;
    __asm__ volatile("rdgsbase %0" : "=r"(gs));
    if (gs && (gs & (SUD_AREA_SIZE - 1)) == 0)
        sud_safe_copy(&magic, (const void *)gs, 8, 0);
    if (gs == 0 || magic == SUD_THREAD_MAGIC)
        __asm__ volatile("wrgsbase %0" ::"r"((uint64_t)t) : "memory");
}

/* A trapped call from the policy's thread: patch the site when it is one of
 * the patterns. */
void sud_rewrite_trapped(struct sud_frame *f, uint32_t locator)
{
    if (!sud_have_fsgsbase)
        return;
    uint64_t end = f->call_addr;
    if (f->arch != SUD_AUDIT_ARCH_X86_64 || end < 4096 + 9 || f->rip != end)
        return;
    if (!lock_try())
        return; /* another thread is patching: this site's next trap will do */
    struct site *s = site_slot(end, 1);
    if (!s || s->state != SITE_FREE) {
        lock_drop();
        return;
    }
    s->addr = end;
    s->nr = (uint32_t)f->nr;
    uint8_t code[9]; /* the nine bytes before site_end, read without faulting */
    int len = 0;
    if (f->nr <= 0xffffffffu && !sud_safe_copy(code, (const void *)(end - 9), 9, 0))
        len = match(code + 9, f->nr);
    int why = len ? try_patch(s, end - (uint64_t)len - 2, code + 9 - len - 2, len, locator) : WHY_PATTERN;
    s->len = (uint8_t)len;
    s->reason = (uint8_t)why;
    if (why) {
        s->state = SITE_REJECTED;
        nrejected++;
    } else {
        s->state = SITE_PATCHED;
        npatched++;
    }
    lock_drop();
}

/* For Python: every examined site (site_end, nr, state, reason, trampoline). */
int sud_rewrite_sites(uint64_t (*out)[5], int max)
{
    int n = 0;
    if (!lock_take())
        return -1;
    for (int i = 0; i < SITE_SLOTS && n < max; i++) {
        struct site *s = &sites[i];
        if (s->state == SITE_FREE)
            continue;
        out[n][0] = s->addr;
        out[n][1] = s->nr;
        out[n][2] = s->state;
        out[n][3] = s->reason;
        out[n][4] = s->tramp;
        n++;
    }
    lock_drop();
    return n;
}

/* Forget examined sites (a new image replaces the old one: its addresses
 * mean other code now).  Trampolines stay mapped: a thread may still be in one. */
void sud_rewrite_forget(void)
{
    if (!lock_take())
        return;
    for (int i = 0; i < SITE_SLOTS; i++)
        sites[i].state = SITE_FREE, sites[i].addr = 0;
    lock_drop();
}
