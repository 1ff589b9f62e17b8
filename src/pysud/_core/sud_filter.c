/* sud_filter.c - argument filters: a call whose handler only cares about
 * some paths (or some descriptor numbers) reaches Python only when its
 * argument starts with one of those paths (lies in that range); every other
 * such call runs natively in C (no Python, no GIL).
 *
 * Outside signal context (sud_dispatch), general registers only, no libc.
 */
#define _GNU_SOURCE
#pragma GCC target("general-regs-only")
#include "sud.h"

/* Copy up to n bytes of the string at src, without faulting: the first page
 * must be readable, the rest is read if it is.  Returns the bytes read or -1. */
static long peek(char *dst, uint64_t src, long n)
{
    long first = 4096 - (long)(src & 4095);
    if (first > n)
        first = n;
    int probe = sud_vsig_active() && sud_faults_deliverable(); /* (else a fault would kill) */
    long r = probe ? sud_probe_copy(dst, (const void *)src, (uint64_t)first)
                   : sud_safe_copy(dst, (const void *)src, (size_t)first, 0);
    if (r)
        return -1;
    for (long i = 0; i < first; i++)
        if (!dst[i])
            return first;
    if (first < n) {
        r = probe ? sud_probe_copy(dst + first, (const void *)(src + (uint64_t)first), (uint64_t)(n - first))
                  : sud_safe_copy(dst + first, (const void *)(src + (uint64_t)first), (size_t)(n - first), 0);
        if (!r)
            return n;
    }
    return first;
}

/* Does this call go to Python?  Yes when the number has no filter, when the
 * path cannot be read (the handler answers EFAULT as the kernel would), or
 * when the path starts with one of the filter's prefixes. */
int sud_filter_wants(const struct sud_policy *p, const struct sud_frame *f)
{
    int slot = p->path_filter[f->nr];
    if (!slot)
        return 1;
    const struct sud_path_filter *pf = &p->filters[slot - 1];
    long a[6];
    sud_frame_args(f, a);
    if (!pf->nprefix) {
        uint32_t v = (uint32_t)a[pf->arg];
        return v >= pf->lo && v <= pf->hi;
    }
    char buf[SUD_PREFIX_MAX];
    long n = peek(buf, (uint64_t)a[pf->arg], SUD_PREFIX_MAX);
    if (n < 0)
        return 1;
    for (int k = 0; k < pf->nprefix; k++) {
        int len = pf->len[k], i = 0;
        if (len > n)
            continue;
        while (i < len && buf[i] == pf->prefix[k][i])
            i++;
        if (i == len)
            return 1;
    }
    return 0;
}
