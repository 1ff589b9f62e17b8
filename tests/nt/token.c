/* Tokens and security through ntdll: the process token's user, groups, privileges, owner, primary
 * group, default DACL, elevation, integrity level, session, statistics; thread tokens; duplicates;
 * privilege adjustment; access checks; security descriptors of objects. Prints SIDs and statuses
 * (never LUIDs, which differ per boot), so the output equals Wine's for the same .exe. */
#include "nt.h"

NTSTATUS NTAPI NtOpenProcessToken(HANDLE, ULONG, HANDLE *);
NTSTATUS NTAPI NtOpenProcessTokenEx(HANDLE, ULONG, ULONG, HANDLE *);
NTSTATUS NTAPI NtOpenThreadToken(HANDLE, ULONG, BOOLEAN, HANDLE *);
NTSTATUS NTAPI NtOpenThreadTokenEx(HANDLE, ULONG, BOOLEAN, ULONG, HANDLE *);
NTSTATUS NTAPI NtQueryInformationToken(HANDLE, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtDuplicateToken(HANDLE, ULONG, OBJECT_ATTRIBUTES *, BOOLEAN, int, HANDLE *);
NTSTATUS NTAPI NtAdjustPrivilegesToken(HANDLE, BOOLEAN, void *, ULONG, void *, ULONG *);
NTSTATUS NTAPI NtAccessCheck(void *, HANDLE, ULONG, void *, void *, ULONG *, ULONG *, NTSTATUS *);
NTSTATUS NTAPI NtQuerySecurityObject(HANDLE, ULONG, void *, ULONG, ULONG *);

#define TOKEN_ALL_ACCESS 0xf01ff
#define TOKEN_QUERY 0x8
#define TOKEN_DUPLICATE 0x2
#define TOKEN_ADJUST_PRIVILEGES 0x20

typedef struct { unsigned char Revision, SubAuthorityCount, Authority[6]; ULONG SubAuthority[1]; } SID;
typedef struct { SID *Sid; ULONG Attributes; } SID_AND_ATTRIBUTES;
typedef struct { ULONG LowPart; long HighPart; } LUID;
typedef struct { LUID Luid; ULONG Attributes; } LUID_AND_ATTRIBUTES;
typedef struct { unsigned char AclRevision, Sbz1; USHORT AclSize, AceCount, Sbz2; } ACL;
typedef struct { unsigned char AceType, AceFlags; USHORT AceSize; ULONG Mask; ULONG SidStart; } ACE;

static unsigned char buf[4096];

static void out_sid(const SID *sid)
{
    unsigned long long auth = 0;
    for (int i = 0; i < 6; i++) auth = auth << 8 | sid->Authority[i];
    out("S-"); out_dec(sid->Revision); out("-"); out_dec((long long)auth);
    for (int i = 0; i < sid->SubAuthorityCount; i++) { out("-"); out_dec(sid->SubAuthority[i]); }
}

static NTSTATUS query(HANDLE tok, int cls, const char *what)
{
    ULONG got = 0;
    nt_memset(buf, 0, sizeof buf);
    NTSTATUS s = NtQueryInformationToken(tok, cls, buf, sizeof buf, &got);
    out(what); out(" = "); out_hex((unsigned long)s);
    if (!s) { out(" size "); out_dec(got); }
    out("\n");
    if (!s) {
        ULONG small = 0;
        NTSTATUS t = NtQueryInformationToken(tok, cls, buf + 2048, 2, &small);
        if (t != (NTSTATUS)0xc0000023 || small != got) {
            out("  short buffer = "); out_hex((unsigned long)t); out(" needed "); out_dec(small); out("\n");
        }
    }
    return s;
}

static void out_acl(const ACL *acl)
{
    out("  acl revision "); out_dec(acl->AclRevision); out(" aces "); out_dec(acl->AceCount); out("\n");
    const unsigned char *p = (const unsigned char *)(acl + 1);
    for (int i = 0; i < acl->AceCount; i++) {
        const ACE *ace = (const ACE *)p;
        out("  ace type "); out_dec(ace->AceType); out(" flags "); out_hex(ace->AceFlags); out(" mask ");
        out_hex(ace->Mask); out(" "); out_sid((const SID *)&ace->SidStart); out("\n");
        p += ace->AceSize;
    }
}

static void dump(HANDLE tok)
{
    if (!query(tok, 1, "TokenUser")) {
        SID_AND_ATTRIBUTES *u = (void *)buf;
        out("  "); out_sid(u->Sid); out(" attributes "); out_hex(u->Attributes); out("\n");
    }
    if (!query(tok, 2, "TokenGroups")) {
        ULONG n = *(ULONG *)buf; SID_AND_ATTRIBUTES *g = (void *)(buf + 8);
        for (ULONG i = 0; i < n; i++) {
            const SID *sid = g[i].Sid;
            out("  "); if (sid->SubAuthorityCount == 3 && sid->SubAuthority[0] == 5) out("S-1-5-5-X-Y"); else out_sid(sid);
            out(" attributes "); out_hex(g[i].Attributes); out("\n");
        }
    }
    if (!query(tok, 3, "TokenPrivileges")) {
        ULONG n = *(ULONG *)buf; LUID_AND_ATTRIBUTES *p = (void *)(buf + 4);
        for (ULONG i = 0; i < n; i++) {
            out("  privilege "); out_dec(p[i].Luid.LowPart); out(" attributes "); out_hex(p[i].Attributes); out("\n");
        }
    }
    if (!query(tok, 4, "TokenOwner")) { out("  "); out_sid(*(SID **)buf); out("\n"); }
    if (!query(tok, 5, "TokenPrimaryGroup")) { out("  "); out_sid(*(SID **)buf); out("\n"); }
    if (!query(tok, 6, "TokenDefaultDacl")) out_acl(*(ACL **)buf);
    if (!query(tok, 8, "TokenType")) { out("  "); out_dec(*(ULONG *)buf); out("\n"); }
    query(tok, 9, "TokenImpersonationLevel");
    if (!query(tok, 10, "TokenStatistics")) {
        ULONG *w = (ULONG *)buf;
        out("  type "); out_dec(w[6]); out(" level "); out_dec(w[7]); out(" groups "); out_dec(w[10]);
        out(" privileges "); out_dec(w[11]); out("\n");
    }
    if (!query(tok, 12, "TokenSessionId")) { out("  "); out_dec(*(ULONG *)buf); out("\n"); }
    if (!query(tok, 18, "TokenElevationType")) { out("  "); out_dec(*(ULONG *)buf); out("\n"); }
    if (!query(tok, 20, "TokenElevation")) { out("  "); out_dec(*(ULONG *)buf); out("\n"); }
    if (!query(tok, 25, "TokenIntegrityLevel")) {
        SID_AND_ATTRIBUTES *l = (void *)buf;
        out("  "); out_sid(l->Sid); out(" attributes "); out_hex(l->Attributes); out("\n");
    }
    if (!query(tok, 29, "TokenIsAppContainer")) { out("  "); out_dec(*(ULONG *)buf); out("\n"); }
}

int mainCRTStartup(void)
{
    HANDLE tok = 0, tok2 = 0, dup = 0; NTSTATUS s;
    s = NtOpenProcessToken(NtCurrentProcess(), TOKEN_ALL_ACCESS, &tok); check("open process token", s);
    dump(tok);
    s = NtOpenProcessTokenEx(NtCurrentProcess(), TOKEN_QUERY, 0, &tok2); check("open process token ex", s);
    query(tok2, 1, "TokenUser through the second handle");
    NtClose(tok2);
    tok2 = (HANDLE)1;
    s = NtOpenThreadToken(NtCurrentThread(), TOKEN_QUERY, 1, &tok2); check("open thread token", s);
    out("  handle "); out_hex((ULONG_PTR)tok2); out("\n");
    s = NtOpenThreadTokenEx(NtCurrentThread(), TOKEN_QUERY, 0, 0, &tok2); check("open thread token ex", s);
    s = NtOpenProcessToken((HANDLE)0x7770, TOKEN_QUERY, &tok2); check("open token of a bad handle", s);
    s = NtQueryInformationToken(tok, 1, buf, sizeof buf, 0); check("query without a length pointer", s);

    s = NtDuplicateToken(tok, TOKEN_ALL_ACCESS, 0, 0, 2 /* TokenImpersonation */, &dup); check("duplicate as impersonation", s);
    query(dup, 8, "  TokenType");
    out("  "); out_dec(*(ULONG *)buf); out("\n");
    NtClose(dup);
    s = NtDuplicateToken(tok, TOKEN_ALL_ACCESS, 0, 0, 1 /* TokenPrimary */, &dup); check("duplicate as primary", s);

    {   /* enable a privilege that is there, then one that is not */
        struct { ULONG count; LUID_AND_ATTRIBUTES p[1]; } np = {1, {{{20, 0}, 2 /* SE_PRIVILEGE_ENABLED */}}}, old;
        ULONG got = 0;
        nt_memset(&old, 0, sizeof old);
        s = NtAdjustPrivilegesToken(dup, 0, &np, sizeof old, &old, &got); check("enable SeDebugPrivilege", s);
        out("  previous count "); out_dec(old.count); out(" attributes "); out_hex(old.p[0].Attributes); out(" size ");
        out_dec(got); out("\n");
        query(dup, 3, "  TokenPrivileges after");
        ULONG n = *(ULONG *)buf; LUID_AND_ATTRIBUTES *p = (void *)(buf + 4);
        for (ULONG i = 0; i < n; i++) if (p[i].Luid.LowPart == 20) { out("  debug "); out_hex(p[i].Attributes); out("\n"); }
        np.p[0].Luid.LowPart = 2; /* SeCreateTokenPrivilege: not held */
        s = NtAdjustPrivilegesToken(dup, 0, &np, 0, 0, 0); check("enable SeCreateTokenPrivilege", s);
    }
    {   /* an access check against a DACL allowing Everyone */
        static unsigned char sd[20 + 12 + 12 + 8 + 20];
        static const unsigned char everyone_sid[12] = {1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
        ULONG *w = (ULONG *)sd;
        sd[0] = 1; sd[2] = 0x04; sd[3] = 0x80;      /* revision 1, SE_DACL_PRESENT | SE_SELF_RELATIVE */
        w[1] = 20; w[2] = 32; w[3] = 0; w[4] = 44;  /* owner, group, sacl, dacl offsets */
        for (int i = 0; i < 12; i++) sd[20 + i] = sd[32 + i] = everyone_sid[i];
        ACL *acl = (ACL *)(sd + 44); acl->AclRevision = 2; acl->AclSize = 8 + 20; acl->AceCount = 1;
        ACE *ace = (ACE *)(acl + 1); ace->AceType = 0; ace->AceSize = 20; ace->Mask = 0x1f0003;
        for (int i = 0; i < 12; i++) ((unsigned char *)&ace->SidStart)[i] = everyone_sid[i];
        ULONG mapping[4] = {0x20001, 0x20002, 0x20000, 0x1f0003};
        ULONG privlen = 64, granted = 0; NTSTATUS status = 1;
        s = NtDuplicateToken(tok, TOKEN_ALL_ACCESS, 0, 0, 2, &tok2); check("impersonation token (anonymous)", s);
        s = NtAccessCheck(sd, tok2, 0x1, mapping, buf, &privlen, &granted, &status); check("access check", s);
        struct { ULONG Length, Level; BOOLEAN Tracking, EffectiveOnly; } qos = {12, 2 /* SecurityImpersonation */, 0, 0};
        OBJECT_ATTRIBUTES oa = {sizeof oa, 0, 0, 0, 0, &qos};
        s = NtDuplicateToken(tok, TOKEN_ALL_ACCESS, &oa, 0, 2, &tok2); check("impersonation token", s);
        query(tok2, 9, "  TokenImpersonationLevel"); out("  "); out_dec(*(ULONG *)buf); out("\n");
        s = NtAccessCheck(sd, tok2, 0x1, mapping, buf, &privlen, &granted, &status); check("access check", s);
        out("  granted "); out_hex(granted); out(" status "); out_hex((unsigned long)status); out("\n");
        s = NtAccessCheck(sd, tok2, 0x02000000, mapping, buf, &privlen, &granted, &status); check("maximum allowed", s);
        out("  granted "); out_hex(granted); out(" status "); out_hex((unsigned long)status); out("\n");
        s = NtAccessCheck(sd, tok, 0x1, mapping, buf, &privlen, &granted, &status); check("access check with a primary token", s);
    }
    {
        HANDLE ev; ULONG got = 0;
        NtCreateEvent(&ev, EVENT_ALL_ACCESS, 0, NotificationEvent, 0);
        s = NtQuerySecurityObject(ev, 4 /* DACL */, buf, 0, &got); check("event security, no buffer", s);
        out("  needed > 0 "); out_dec(got > 0); out("\n");
    }
    return 0;
}
