/* The vector state in NT contexts: XMM6-15 and MXCSR are part of the CONTEXT an exception handler
 * sees (their values at the fault), a handler's changes to them are what the program continues
 * with (NtContinue), and RtlRestoreContext restores them (MXCSR from FltSave, as Wine loads it).  Prints what it saw; wine is the oracle. */
#include <windows.h>
#include <stdio.h>
#include <string.h>

static unsigned char in[10][16], out6[16], out7[16], out15[16], seen[10][16];
static unsigned seen_mxcsr, out_mxcsr, restored_mxcsr;
static DWORD seen_code;
static const unsigned mxcsr_program = 0x7f80; /* round toward zero, exceptions masked */
static const unsigned mxcsr_default = 0x1f80;

static LONG CALLBACK on_exception(EXCEPTION_POINTERS *ep)
{
    CONTEXT *c = ep->ContextRecord;
    if (ep->ExceptionRecord->ExceptionCode != EXCEPTION_BREAKPOINT)
        return EXCEPTION_CONTINUE_SEARCH;
    seen_code = ep->ExceptionRecord->ExceptionCode;
    seen_mxcsr = c->MxCsr;
    memcpy(seen, &c->Xmm6, sizeof seen); /* Xmm6..Xmm15 are consecutive M128A */
    /* continue with other values: XMM7 and MXCSR changed, past the int3 */
    c->Xmm7.Low = 0x1111222233334444ull;
    c->Xmm7.High = 0x5555666677778888ull;
    c->MxCsr = 0x3f80; /* the CONTEXT's own field: Wine loads MXCSR from FltSave, so no change */
    c->Rip += 1;
    return EXCEPTION_CONTINUE_EXECUTION;
}

static void hex(const char *name, const unsigned char *b)
{
    printf("%s ", name);
    for (int i = 15; i >= 0; i--)
        printf("%02x", b[i]);
    printf("\n");
}

static volatile int pass;
static CONTEXT ctx;

int main(void)
{
    for (int r = 0; r < 10; r++)
        for (int i = 0; i < 16; i++)
            in[r][i] = (unsigned char)(0x60 + 16 * r + i);
    AddVectoredExceptionHandler(1, on_exception);

    __asm__ volatile("movdqu 0(%0), %%xmm6\n\tmovdqu 16(%0), %%xmm7\n\tmovdqu 32(%0), %%xmm8\n\t"
                     "movdqu 48(%0), %%xmm9\n\tmovdqu 64(%0), %%xmm10\n\tmovdqu 80(%0), %%xmm11\n\t"
                     "movdqu 96(%0), %%xmm12\n\tmovdqu 112(%0), %%xmm13\n\tmovdqu 128(%0), %%xmm14\n\t"
                     "movdqu 144(%0), %%xmm15\n\t"
                     "ldmxcsr %1\n\t"
                     "int3\n\t"
                     "stmxcsr %2\n\t"
                     "ldmxcsr %3\n\t"
                     "movdqu %%xmm6, %4\n\tmovdqu %%xmm7, %5\n\tmovdqu %%xmm15, %6\n\t"
                     :
                     : "r"(in), "m"(mxcsr_program), "m"(out_mxcsr), "m"(mxcsr_default), "m"(out6), "m"(out7),
                       "m"(out15)
                     : "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
                       "memory");
    printf("exception %08lx, MXCSR at the fault %04x\n", seen_code, seen_mxcsr);
    for (int r = 0; r < 10; r++) {
        char name[16];
        snprintf(name, sizeof name, "xmm%d", r + 6);
        hex(name, seen[r]);
    }
    printf("after the handler: MXCSR %04x\n", out_mxcsr);
    hex("xmm6", out6);
    hex("xmm7", out7);
    hex("xmm15", out15);

    /* RtlCaptureContext / RtlRestoreContext (NtContinue) with a changed XMM8 and MXCSR */
    RtlCaptureContext(&ctx);
    if (!pass) {
        pass = 1;
        ctx.Xmm8.Low = 0x0123456789abcdefull;
        ctx.Xmm8.High = 0xfedcba9876543210ull;
        ctx.FltSave.MxCsr = 0x5f80; /* round up */
        RtlRestoreContext(&ctx, NULL);
    }
    unsigned char x8[16];
    __asm__ volatile("movdqu %%xmm8, %0\n\tstmxcsr %1\n\tldmxcsr %2" : "=m"(x8), "=m"(restored_mxcsr) : "m"(mxcsr_default));
    printf("restored: MXCSR %04x\n", restored_mxcsr);
    hex("xmm8", x8);
    return 0;
}
