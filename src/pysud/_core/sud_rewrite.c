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
 *          jmp *sud_rewrite_entry            the flip-switch entry (frame: TRAP too)
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
#include <sys/uio.h>

#include "sud.h"

#define SITE_SLOTS 8192 /* examined sites (open addressing, power of two) */
#define CHUNK_SIZE (64 * 1024)
#define TRAMP_SIZE 128 /* a slot: header (16 bytes), then the code */
#define TRAMP_HDR 16
#define MAX_CHUNKS 256
#define MAX_HOST 512
#define REL32_REACH 0x7ff00000l

enum { SITE_FREE = 0, SITE_PATCHED = 1, SITE_REJECTED = 2 };

#define EXPECT 17 /* bytes before site_end compared: the longest instruction and the syscall */

struct site {
    uint64_t addr;  /* site_end: the address after the syscall */
    uint64_t tramp; /* its trampoline, when patched */
    uint32_t state, nr;
    uint8_t reason, len;
    uint16_t traps; /* traps seen while waiting for the planner (SUD_REWRITE_PLAN_AFTER) */
    uint8_t expect[EXPECT]; /* the bytes before addr when examined (after patching) */
    /* A patched site's stores, for the planner's pristine view of its neighbours (see
     * pristine()): at `at` (the relocated instruction) `nput` bytes, at `pad_at` (0: none) 5. */
    uint8_t nput, was[5], put[5], pad_was[5], pad_put[5];
    uint64_t at, pad_at;
};

/* The head of a trampoline slot, for the signal handlers (sud_rewrite_signal_rip,
 * sud_rewrite_fault_fixup): where the code came from and where its parts are. */
struct tramp_hdr {
    uint64_t site;   /* the relocated instruction's address at the site */
    uint8_t len;     /* its length: the site's syscall is at site + len */
    uint8_t load;    /* offset (from the code) of the GS check's load, 0: none */
    uint8_t fallback; /* offset of `jmp syscall` */
    uint8_t used;    /* written last: the slot is complete */
    uint8_t pad[4];
};
_Static_assert(sizeof(struct tramp_hdr) <= TRAMP_HDR, "tramp_hdr");

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

/* Below the code first: above a program's image lies its brk heap, which
 * grows into free space (a chunk there would end it early). */
static uint64_t chunk_map_near(uint64_t site)
{
    uint64_t page = site & ~(uint64_t)(CHUNK_SIZE - 1);
    for (int dir = -1; dir <= 1; dir += 2) {
        for (uint64_t step = 1; step < 2000; step++) {
            uint64_t want = page + (uint64_t)((long)dir * (long)step * (1l << 20));
            if (want < (1ul << 20) || want > 0x7ffffff00000ul)
                continue;
            long r = sud_gate_syscall6(SYS_mmap, (long)want, CHUNK_SIZE, PROT_READ | PROT_EXEC,
                                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (r == (long)want)
                return want;
            if (r > 0) /* an old kernel took the address as a hint only */
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

/* A trampoline's code (at tramp, the slot's code), with the head the signal
 * handlers read.  No instruction here changes RFLAGS (jrcxz, not, lea and
 * movz test and compute without them): the direct entry saves the flags the
 * program had at its syscall.  RCX and R11 are free: the syscall overwrites
 * both.
 *
 *   <the relocated instruction>
 *   rdgsbase %rcx; jrcxz fb                 no GS base: trap as before
 *   Linux (the GS base is the thread block itself, if it is pysud's):
 *     mov %rcx,%r11; movzwl %cx,%ecx; jrcxz 1f; jmp fb    not 64 KiB aligned: not a block
 *  1: mov LOC(%r11),%rcx; not %rcx; lea 1(%r11,%rcx),%rcx  GS base - block->self
 *     jrcxz 2f; jmp fb                       the program's own GS base: trap
 *  2: movzbl T_SELQ(%r11),%ecx; jrcxz fb     selector ALLOW: run it natively
 *     mov %r11,%rcx
 *   NT (the GS base is the TEB, LOC its slot holding the block):
 *     mov LOC(%rcx),%rcx; jrcxz fb; mov %rcx,%r11; movzbl T_SELQ(%rcx),%ecx; jrcxz fb; mov %r11,%rcx
 *   lea site_end(%rip),%r11; jmp *sud_rewrite_entry
 *   fb: jmp site+len                        the original syscall
 */
struct emit {
    uint8_t *t;
    int n, nfix, fix[8];
};

static void put(struct emit *e, const uint8_t *b, int len)
{
    for (int i = 0; i < len; i++)
        e->t[e->n++] = b[i];
}
#define PUT(e, ...)                                                                                                    \
    do {                                                                                                               \
        static const uint8_t b_[] = {__VA_ARGS__};                                                                     \
        put(e, b_, (int)sizeof b_);                                                                                    \
    } while (0)

/* jrcxz fb / jmp fb, rel8 filled in when fb is known */
static void to_fallback(struct emit *e, uint8_t op)
{
    e->t[e->n++] = op;
    e->fix[e->nfix++] = e->n++;
}

static int make_trampoline(uint8_t *t, struct tramp_hdr *h, uint64_t tramp, uint64_t site, const uint8_t *insn, int len,
                           uint32_t locator)
{
    struct emit e = {.t = t};
    put(&e, insn, len);
    PUT(&e, 0xf3, 0x48, 0x0f, 0xae, 0xc9); /* rdgsbase %rcx */
    to_fallback(&e, 0xe3);                  /* jrcxz fb */
    h->load = 0;
    if (locator == SUD_REWRITE_LINUX_LOCATOR) {
        PUT(&e, 0x49, 0x89, 0xcb);       /* mov %rcx,%r11 */
        PUT(&e, 0x0f, 0xb7, 0xc9);       /* movzwl %cx,%ecx */
        PUT(&e, 0xe3, 0x02);             /* jrcxz 1f */
        to_fallback(&e, 0xeb);           /* jmp fb */
        h->load = (uint8_t)e.n;          /* 1: (may fault: sud_rewrite_fault_fixup) */
        PUT(&e, 0x49, 0x8b, 0x8b);       /* mov LOC(%r11),%rcx */
        put32(t + e.n, locator);
        e.n += 4;
        PUT(&e, 0x48, 0xf7, 0xd1);       /* not %rcx */
        PUT(&e, 0x49, 0x8d, 0x4c, 0x0b, 0x01); /* lea 1(%r11,%rcx),%rcx */
        PUT(&e, 0xe3, 0x02);             /* jrcxz 2f */
        to_fallback(&e, 0xeb);           /* jmp fb */
        PUT(&e, 0x41, 0x0f, 0xb6, 0x4b, T_SELQ); /* 2: movzbl T_SELQ(%r11),%ecx */
        to_fallback(&e, 0xe3);           /* jrcxz fb */
        PUT(&e, 0x4c, 0x89, 0xd9);       /* mov %r11,%rcx */
    } else {
        PUT(&e, 0x48, 0x8b, 0x89); /* mov LOC(%rcx),%rcx */
        put32(t + e.n, locator);
        e.n += 4;
        to_fallback(&e, 0xe3);                 /* jrcxz fb */
        PUT(&e, 0x49, 0x89, 0xcb);             /* mov %rcx,%r11 */
        PUT(&e, 0x0f, 0xb6, 0x49, T_SELQ);     /* movzbl T_SELQ(%rcx),%ecx */
        to_fallback(&e, 0xe3);                 /* jrcxz fb */
        PUT(&e, 0x4c, 0x89, 0xd9);             /* mov %r11,%rcx */
    }
    PUT(&e, 0x4c, 0x8d, 0x1d); /* lea rel32(%rip),%r11 */
    uint64_t site_end = site + (uint64_t)len + 2;
    put32(t + e.n, (uint32_t)(site_end - (tramp + (uint64_t)e.n + 4)));
    e.n += 4;
    PUT(&e, 0xff, 0x25, 0, 0, 0, 0); /* jmp *0(%rip) */
    uint64_t entry = (uint64_t)sud_rewrite_entry;
    for (int i = 0; i < 8; i++)
        t[e.n++] = (uint8_t)(entry >> (8 * i));
    for (int i = 0; i < e.nfix; i++)
        t[e.fix[i]] = (uint8_t)(e.n - (e.fix[i] + 1));
    h->fallback = (uint8_t)e.n;
    t[e.n++] = 0xe9; /* fb: jmp the original syscall */
    put32(t + e.n, (uint32_t)(site + (uint64_t)len - (tramp + (uint64_t)e.n + 4)));
    e.n += 4;
    h->site = site;
    h->len = (uint8_t)len;
    return e.n;
}

static long page_prot(uint64_t lo, uint64_t hi, int prot)
{
    uint64_t a = lo & ~4095ul, b = (hi + 4095) & ~4095ul;
    return sud_gate_syscall6(SYS_mprotect, (long)a, (long)(b - a), prot, 0, 0, 0);
}

/* Length of the nop (or int3) at p, 0 if it is something else. */
static int nop_len(const uint8_t *p, int avail)
{
    int i = 0;
    while (i < avail && i < 14 && (p[i] == 0x66 || p[i] == 0x2e))
        i++; /* operand-size and cs prefixes of the long nops */
    if (i < avail && (p[i] == 0x90 || (i == 0 && p[i] == 0xcc)))
        return i + 1;
    if (i + 2 >= avail || p[i] != 0x0f || p[i + 1] != 0x1f)
        return 0;
    uint8_t m = p[i + 2];
    int mod = m >> 6, rm = m & 7, n = i + 3;
    if (mod != 3 && rm == 4)
        n++; /* SIB */
    n += mod == 1 ? 1 : mod == 2 ? 4 : (mod == 0 && rm == 5) ? 4 : 0;
    return n <= avail ? n : 0;
}

/* glibc's read: `xor %eax,%eax; syscall` (two bytes too short for a jmp
 * rel32), then `cmp $-4096,%rax; ja err; ret` and the alignment padding
 * before the next function.  Padding after an unconditional ret is dead
 * code: the site's xor becomes a 2-byte jmp into it, where a jmp rel32 goes
 * on to the trampoline.  Returns the padding's offset from site_end, or 0.
 * (The syscall stays in place, as for the other patterns.) */
static int find_pad(const uint8_t *a, int avail, uint64_t end)
{
    int i = 0;
    if (avail >= 6 && a[0] == 0x48 && a[1] == 0x3d) /* cmp $imm32,%rax */
        i = 6;
    else if (avail >= 4 && a[0] == 0x48 && a[1] == 0x83 && a[2] == 0xf8) /* cmp $imm8,%rax */
        i = 4;
    else
        return 0;
    if (i + 2 <= avail && a[i] == 0x77) /* ja rel8 */
        i += 2;
    else if (i + 6 <= avail && a[i] == 0x0f && a[i + 1] == 0x87) /* ja rel32 */
        i += 6;
    else
        return 0;
    if (i >= avail || a[i] != 0xc3) /* ret */
        return 0;
    int pad = ++i;
    uint64_t boundary = (end + (uint64_t)pad + 15) & ~15ul;
    if (boundary - (end + (uint64_t)pad) < 5 || (int)(boundary - end) > avail)
        return 0;
    while (end + (uint64_t)i < boundary) {
        int n = nop_len(a + i, (int)(boundary - end) - i);
        if (!n)
            return 0;
        i += n;
    }
    return pad;
}

/* Match the bytes before the syscall at site_end - 2.  Returns the length of
 * the instruction that sets the number (5 or 7 for a mov, 2 for glibc read's
 * xor, which also needs *pad) or 0. */
static int match(const uint8_t *end, uint64_t nr, uint64_t end_addr, const uint8_t *after, int avail, int *pad)
{
    *pad = 0;
    if (end[-2] != 0x0f || end[-1] != 0x05)
        return 0;
    if (nr == 0 && end[-4] == 0x31 && end[-3] == 0xc0) {
        *pad = find_pad(after, avail, end_addr);
        return *pad ? 2 : 0;
    }
    const uint8_t *b = end - 7;
    if (b[0] == 0xb8 && (b[1] | b[2] << 8 | b[3] << 16 | (uint32_t)b[4] << 24) == nr)
        return 5;
    b = end - 9;
    if (b[0] == 0x48 && b[1] == 0xc7 && b[2] == 0xc0 && (b[3] | b[4] << 8 | b[5] << 16 | (uint32_t)b[6] << 24) == nr)
        return 7;
    return 0;
}

enum { WHY_PATTERN = 1, WHY_MAPPING, WHY_HOST, WHY_LINE, WHY_SIGRETURN, WHY_ROOM, WHY_PROTECT, WHY_RELOCATION };
#define WHY_WAITING 10 /* (9: the planner's "no padding") fewer traps than SUD_REWRITE_PLAN_AFTER so far */

/* One 8-byte store inside a cache line covers the bytes that change where a
 * thread may be executing (5: jmp rel32, 2: jmp rel8): the word it writes. */
static uint64_t store_word(uint64_t site)
{
    uint64_t in_line = site & 63;
    return in_line <= 56 ? site : site - (in_line - 56);
}

static int one_store(uint64_t site, int nbytes)
{
    uint64_t w = store_word(site);
    return site + (uint64_t)nbytes <= w + 8 && (w & ~63ul) == (site & ~63ul);
}

/* Patch site (an instruction of len bytes, then the syscall).  pad: 0, or the
 * address of dead padding that a 2-byte jmp at the site reaches.  disp: 0, or
 * where in the instruction a rip-relative disp32 lies (adjusted for the
 * trampoline, which is within rel32 reach of the site). */
static int try_patch(struct site *s, uint64_t site, const uint8_t *insn, int len, uint64_t pad, int disp,
                     uint32_t locator)
{
    if (in_host(site))
        return WHY_HOST;
    if (s->nr == SYS_rt_sigreturn)
        return WHY_SIGRETURN;
    uint64_t site_end = site + (uint64_t)len + 2;
    uint64_t lo = pad && pad < site ? pad : site, hi = pad && pad + 5 > site_end ? pad + 5 : site_end;
    if (!private_text(lo, hi))
        return WHY_MAPPING;
    int nbytes = pad ? 2 : 5;
    uint64_t w = store_word(site);
    if (!one_store(site, nbytes)) {
        nskipped_line++;
        return WHY_LINE;
    }
    uint64_t slot = tramp_alloc(site);
    if (!slot)
        return WHY_ROOM;
    uint64_t tramp = slot + TRAMP_HDR;
    uint8_t mov[16], code[TRAMP_SIZE - TRAMP_HDR];
    for (int i = 0; i < len; i++)
        mov[i] = insn[i];
    if (disp) {
        /* the same target from the trampoline: both copies end len bytes after their start */
        int32_t d = (int32_t)((uint32_t)mov[disp] | (uint32_t)mov[disp + 1] << 8 | (uint32_t)mov[disp + 2] << 16 |
                              (uint32_t)mov[disp + 3] << 24);
        int64_t nd = (int64_t)d + (int64_t)(site - tramp);
        if (nd != (int32_t)nd)
            return WHY_RELOCATION; /* (the slot stays unused: no room is lost but its 128 bytes) */
        put32(mov + disp, (uint32_t)(int32_t)nd);
    }
    struct tramp_hdr h = {0};
    int n = make_trampoline(code, &h, tramp, site, mov, len, locator);
    if (page_prot(slot, tramp + (uint64_t)n, PROT_READ | PROT_WRITE | PROT_EXEC))
        return WHY_PROTECT;
    for (int i = 0; i < n; i++)
        ((volatile uint8_t *)tramp)[i] = code[i];
    h.used = 1;
    for (unsigned i = 0; i < sizeof h; i++)
        ((volatile uint8_t *)slot)[i] = ((const uint8_t *)&h)[i];
    page_prot(slot, tramp + (uint64_t)n, PROT_READ | PROT_EXEC);

    uint64_t plo = w < site ? w : site, phi = pad ? pad + 5 : w + 8;
    if (pad && pad < plo)
        plo = pad;
    if (phi < w + 8)
        phi = w + 8;
    if (page_prot(plo, phi, PROT_READ | PROT_WRITE | PROT_EXEC))
        return WHY_PROTECT;
    uint8_t jmp[5] = {0xe9};
    if (pad) {
        /* the padding first (dead code: nothing runs it until the hop exists) */
        put32(jmp + 1, (uint32_t)(tramp - (pad + 5)));
        for (int i = 0; i < 5; i++) {
            s->pad_was[i] = ((const volatile uint8_t *)pad)[i], s->pad_put[i] = jmp[i];
            ((volatile uint8_t *)pad)[i] = jmp[i];
        }
        jmp[0] = 0xeb;
        jmp[1] = (uint8_t)(pad - (site + 2));
    } else {
        put32(jmp + 1, (uint32_t)(tramp - (site + 5)));
    }
    s->at = site, s->nput = (uint8_t)nbytes, s->pad_at = pad;
    for (int i = 0; i < nbytes; i++)
        s->was[i] = ((const volatile uint8_t *)site)[i], s->put[i] = jmp[i];
    uint64_t old = *(volatile uint64_t *)w, neww = old;
    for (int i = 0; i < nbytes; i++) {
        int sh = (int)(site - w + (uint64_t)i) * 8;
        neww = (neww & ~(0xfful << sh)) | ((uint64_t)jmp[i] << sh);
    }
    __atomic_store_n((volatile uint64_t *)w, neww, __ATOMIC_SEQ_CST);
    page_prot(plo, phi, PROT_READ | PROT_EXEC);
    s->tramp = tramp;
    return 0;
}

/* A call from a rewritten site (sud_rewrite_entry): would the kernel have
 * dispatched it, with the thread's range as armed now (the trampoline only
 * knows the selector)?  If not, the frame is sent back to the site's own
 * syscall instruction, which the kernel then runs as it would natively. */
int sud_rewrite_dispatched(const struct sud_thread *t, struct sud_frame *f)
{
    int in = f->call_addr - t->koffset < t->klen;
    if (t->kop == SUD_OP_INCLUSIVE_ON ? in : t->kop == SUD_OP_EXCLUSIVE_ON && !in)
        return 1;
    f->rip = f->call_addr - 2;
    f->rax = f->nr;
    return 0;
}

/* Every prctl(PR_SET_SYSCALL_USER_DISPATCH) the core makes (arming, raw
 * calls from Python) succeeded with these values: what the kernel now does
 * for this thread.  Armed with a selector other than the thread's own, the
 * trampoline's selector test means nothing: its calls go back to the site. */
void sud_rewrite_prctl_done(long op, long offset, long len, const void *selector)
{
    struct sud_thread *t = sud_self;
    if (!t)
        return;
    t->kop = op == SUD_OP_OFF || selector == (const void *)&t->selector ? (int)op : -1;
    t->koffset = (uint64_t)offset;
    t->klen = (uint64_t)len;
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

/* The n bytes before site_end.  The thread just ran the syscall there, so
 * the page of end - 1 is mapped: read it directly when all n lie on it, else
 * without faulting (zeros for a page before that is not mapped).  Returns
 * how many bytes before end are real (0: none could be read). */
static int read_before(uint64_t end, uint8_t *code, int n)
{
    if (((end - (uint64_t)n) >> 12) == ((end - 1) >> 12)) {
        for (int i = 0; i < n; i++)
            code[i] = ((const volatile uint8_t *)(end - (uint64_t)n))[i];
        return n;
    }
    if (!sud_safe_copy(code, (const void *)(end - (uint64_t)n), (size_t)n, 0))
        return n;
    uint64_t pg = (end - 2) & ~4095ul, lo = end - (uint64_t)n < pg ? pg : end - (uint64_t)n;
    for (int i = 0; i < n; i++)
        code[i] = 0;
    if (sud_safe_copy(code + (lo - (end - (uint64_t)n)), (const void *)lo, (size_t)(end - lo), 0))
        return 0;
    return (int)(end - lo);
}

/* Set by the glue: decides a site none of the patterns above matches (the
 * instruction before the syscall set the number from a register, or it is
 * not the instruction right before).  Called with the GIL not held, outside
 * signal context; returns the length of the instruction before the syscall
 * that the trampoline may run in its place, *pad (0, or the offset from
 * site_end, after it or before the instruction, of dead padding for a 2-byte hop) and *disp (0, or the offset in
 * the instruction of a rip-relative disp32 to adjust), or minus a WHY_ code. */
int (*sud_rewrite_plan)(uint64_t end, const uint8_t *before, int nbefore, const uint8_t *after, int nafter,
                        int64_t *pad, int *disp);

/* Undo, in buf (a copy of the n bytes at addr), the stores of patched sites whose bytes are
 * still there: the planner sees the code as the program's file has it, so its answer (and the
 * persistent cache's key, pysud._cache) does not depend on which neighbours were patched first
 * in this run.  Under the lock. */
static void unput(uint8_t *buf, uint64_t addr, int n, uint64_t at, int len, const uint8_t *was, const uint8_t *put)
{
    if (!at || at + (uint64_t)len <= addr || at >= addr + (uint64_t)n)
        return;
    for (int i = 0; i < len; i++) { /* only where all of the store is in view and still ours */
        uint64_t a = at + (uint64_t)i;
        if (a < addr || a >= addr + (uint64_t)n || buf[a - addr] != put[i])
            return;
    }
    for (int i = 0; i < len; i++)
        buf[at + (uint64_t)i - addr] = was[i];
}

static void pristine(uint8_t *buf, uint64_t addr, int n)
{
    for (int i = 0; i < SITE_SLOTS; i++) {
        const struct site *s = &sites[i];
        if (s->state != SITE_PATCHED)
            continue;
        unput(buf, addr, n, s->at, s->nput, s->was, s->put);
        if (s->pad_at)
            unput(buf, addr, n, s->pad_at, 5, s->pad_was, s->pad_put);
    }
}

#define BEFORE 96 /* bytes before site_end the planner sees */
#define AFTER 160 /* and after */

/* A trapped call from the policy's thread: patch the site when it is one of
 * the patterns, or when the planner finds an instruction to relocate.  A
 * site is examined once; it is examined afresh when its bytes are no longer
 * those it had then (the memory now holds other code). */
void sud_rewrite_trapped(struct sud_frame *f, uint32_t locator)
{
    if (!sud_have_fsgsbase)
        return;
    uint64_t end = f->call_addr;
    if (f->arch != SUD_AUDIT_ARCH_X86_64 || end < 4096 + BEFORE || f->rip != end)
        return;
    uint8_t code[BEFORE], *last = code + BEFORE - EXPECT;
    if (!lock_try())
        return; /* another thread is patching: this site's next trap will do */
    int nbefore = read_before(end, code, BEFORE); /* under the lock: padding others took shows */
    if (nbefore < 2) {
        lock_drop();
        return;
    }
    struct site *s = site_slot(end, 1);
    int same = s && s->state != SITE_FREE;
    for (int i = 0; same && i < EXPECT; i++)
        same = s->expect[i] == last[i];
    /* A site only the planner could patch waits for its SUD_REWRITE_PLAN_AFTER-th trap: the
     * calls a program makes once or twice (start-up) never cost a plan. */
    int waiting = same && s->state == SITE_REJECTED && s->reason == WHY_WAITING;
    if (!s || (same && !(waiting && ++s->traps >= SUD_REWRITE_PLAN_AFTER))) {
        lock_drop();
        return;
    }
    if (!same)
        s->traps = 1;
    s->addr = end;
    s->nr = (uint32_t)f->nr;
    s->tramp = 0;
    uint8_t after[AFTER]; /* the bytes after site_end, read without faulting */
    int len = 0, pad = 0, disp = 0, avail = (int)(4096 - (end & 4095)), why = WHY_PATTERN;
    if (avail > (int)sizeof after)
        avail = (int)sizeof after;
    if (sud_safe_copy(after, (const void *)end, (size_t)avail, 0))
        avail = 0;
    if (f->nr <= 0xffffffffu) /* (bytes before the mapping read as zeros) */
        len = match(code + BEFORE, f->nr, end, after, avail, &pad);
    if (pad && (end + (uint64_t)pad) - (end - 2) > 127)
        len = 0; /* out of a jmp rel8's reach from the site */
    if (len >= 5 && !one_store(end - 2 - (uint64_t)len, 5))
        len = 0, why = WHY_LINE; /* the jmp would cross a cache line: the planner may find padding for a hop */
    if (!len && sud_rewrite_plan && f->nr != SYS_rt_sigreturn && !in_host(end - 2) &&
        s->traps < SUD_REWRITE_PLAN_AFTER) {
        why = WHY_WAITING;
    } else if (!len && sud_rewrite_plan && f->nr != SYS_rt_sigreturn && !in_host(end - 2)) {
        sud_xsave(f); /* the interpreter may use vector registers */
        int64_t p = 0;
        uint8_t view_before[BEFORE], view_after[AFTER];
        for (int i = 0; i < BEFORE; i++)
            view_before[i] = code[i];
        for (int i = 0; i < avail; i++)
            view_after[i] = after[i];
        pristine(view_before + BEFORE - nbefore, end - (uint64_t)nbefore, nbefore);
        pristine(view_after, end, avail);
        int r = sud_rewrite_plan(end, view_before + BEFORE - nbefore, nbefore, view_after, avail, &p, &disp);
        long reach = (long)p + r; /* the hop's rel8: from its end (end - r) to the padding (end + p) */
        int pad_ok = p > 0   ? p + 5 <= avail && nop_len(after + p, avail - (int)p)
                     : p < 0 ? -p <= nbefore && p + 5 <= -(r + 2) && nop_len(code + BEFORE + p, (int)-p)
                             : 0;
        if (r < 0)
            why = why == WHY_LINE ? WHY_LINE : -r;
        else if (r >= 2 && r <= 15 && r + 2 <= nbefore && (r >= 5 || p != 0) &&
                 (!p || (reach >= -128 && reach <= 127 && pad_ok)) && (disp == 0 || (disp > 0 && disp + 4 <= r)))
            len = r, pad = (int)p;
        else
            disp = 0;
        if (len >= 5 && pad && one_store(end - 2 - (uint64_t)len, 5))
            pad = 0; /* a jmp rel32 in place: one jump fewer */
    }
    if (len)
        why = try_patch(s, end - (uint64_t)len - 2, code + BEFORE - len - 2, len, pad ? end + (uint64_t)pad : 0,
                        disp, locator);
    s->len = (uint8_t)len;
    s->reason = (uint8_t)why;
    if (why) {
        s->state = SITE_REJECTED;
        nrejected++;
    } else {
        s->state = SITE_PATCHED;
        npatched++;
        read_before(end, code, BEFORE); /* what a patched site looks like now */
    }
    for (int i = 0; i < EXPECT; i++)
        s->expect[i] = last[i];
    lock_drop();
}

/* ---- for the signal handlers (async-signal-safe: reads only) ---- */

/* Copy n bytes of code at addr, or nonzero when they cannot be read: the
 * interrupted address may be in memory that is gone (a program thread kicked
 * while the process tears the image down), so the kernel checks it. */
static int read_code(uint64_t addr, uint8_t *dst, uint64_t n)
{
    struct iovec local = {dst, n}, remote = {(void *)addr, n};
    long pid = sud_gate_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    return sud_gate_syscall6(SYS_process_vm_readv, pid, (long)&local, 1, (long)&remote, 1, 0) != (long)n;
}

/* The head of the trampoline slot that holds rip, or NULL. */
static const struct tramp_hdr *slot_of(uint64_t rip)
{
    int n = __atomic_load_n(&nchunks, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        uint64_t base = chunks[i].base;
        if (rip - base < CHUNK_SIZE) {
            const struct tramp_hdr *h = (const struct tramp_hdr *)(base + ((rip - base) & ~(uint64_t)(TRAMP_SIZE - 1)));
            return h->used && rip >= (uint64_t)h + TRAMP_HDR ? h : NULL;
        }
    }
    return NULL;
}

/* A signal interrupted the program at rip: where the program is as far as
 * its own code goes.  In a trampoline before the relocated instruction ran:
 * the site's first byte; after it (the GS and selector tests, the jmp back):
 * the site's syscall, which RCX and R11 (the only registers the trampoline
 * changed) do not matter to.  On a site's hop in the padding, or at the first
 * instruction of sud_rewrite_entry (which sets the selector ALLOW: after it
 * the signal waits for the dispatch's end): its syscall.
 * Anywhere else: rip.  So a handler that looks at the interrupted address
 * (musl's cancellation, a runtime's preemption) sees the program's code. */
uint64_t sud_rewrite_signal_rip(uint64_t rip, uint64_t r11)
{
    if (rip == (uint64_t)sud_rewrite_entry && nchunks)
        return r11 - 2; /* the trampoline's jmp done, the entry's first instruction not: R11 = site_end */
    const struct tramp_hdr *h = slot_of(rip);
    if (h)
        return rip == (uint64_t)h + TRAMP_HDR ? h->site : h->site + h->len;
    uint8_t jmp[5], hop[2];
    if (nchunks == 0 || read_code(rip, jmp, 5) || jmp[0] != 0xe9)
        return rip;
    uint32_t rel = 0;
    for (int i = 0; i < 4; i++)
        rel |= (uint32_t)jmp[1 + i] << (8 * i);
    uint64_t to = rip + 5 + (uint64_t)(int64_t)(int32_t)rel;
    h = slot_of(to);
    if (!h || to != (uint64_t)h + TRAMP_HDR)
        return rip;
    if (!read_code(h->site, hop, 2) && hop[0] == 0xeb && h->site + 2 + (uint64_t)(int64_t)(int8_t)hop[1] == rip)
        return h->site + h->len;
    return rip;
}

/* A fault at rip: the GS check's load of a trampoline (the program set a GS
 * base of its own, 64 KiB aligned, with nothing mapped at the block's self
 * pointer): where to resume (the trampoline's `jmp syscall`: the call traps
 * as before), or 0 when the fault is not one of these. */
uint64_t sud_rewrite_fault_fixup(uint64_t rip)
{
    const struct tramp_hdr *h = slot_of(rip);
    uint64_t code = (uint64_t)h + TRAMP_HDR;
    return h && h->load && rip == code + h->load ? code + h->fallback : 0;
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
