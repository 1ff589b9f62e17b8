/* The registry through ntdll: create/open keys (dispositions, case, relative names, links), values of
 * every type, information classes with short buffers, enumeration order, notification, deletion.
 * Prints statuses and contents (never times), so the output equals Wine's for the same .exe. */
#include "nt.h"

typedef struct { LARGE_INTEGER LastWriteTime; ULONG TitleIndex, NameLength; WCHAR Name[1]; } KEY_BASIC_INFORMATION;
typedef struct {
    LARGE_INTEGER LastWriteTime; ULONG TitleIndex, ClassOffset, ClassLength, SubKeys, MaxNameLen, MaxClassLen,
        Values, MaxValueNameLen, MaxValueDataLen; WCHAR Class[1];
} KEY_FULL_INFORMATION;
typedef struct { ULONG NameLength; WCHAR Name[1]; } KEY_NAME_INFORMATION;
typedef struct { ULONG TitleIndex, Type, NameLength; WCHAR Name[1]; } KEY_VALUE_BASIC_INFORMATION;
typedef struct { ULONG TitleIndex, Type, DataOffset, DataLength, NameLength; WCHAR Name[1]; } KEY_VALUE_FULL_INFORMATION;
typedef struct { ULONG TitleIndex, Type, DataLength; unsigned char Data[1]; } KEY_VALUE_PARTIAL_INFORMATION;

NTSTATUS NTAPI NtCreateKey(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, ULONG, UNICODE_STRING *, ULONG, ULONG *);
NTSTATUS NTAPI NtOpenKey(HANDLE *, ULONG, OBJECT_ATTRIBUTES *);
NTSTATUS NTAPI NtOpenKeyEx(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, ULONG);
NTSTATUS NTAPI NtQueryKey(HANDLE, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtEnumerateKey(HANDLE, ULONG, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtQueryValueKey(HANDLE, UNICODE_STRING *, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtEnumerateValueKey(HANDLE, ULONG, int, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtSetValueKey(HANDLE, UNICODE_STRING *, ULONG, ULONG, const void *, ULONG);
NTSTATUS NTAPI NtDeleteValueKey(HANDLE, UNICODE_STRING *);
NTSTATUS NTAPI NtDeleteKey(HANDLE);
NTSTATUS NTAPI NtFlushKey(HANDLE);
NTSTATUS NTAPI NtRenameKey(HANDLE, UNICODE_STRING *);
NTSTATUS NTAPI NtNotifyChangeKey(HANDLE, HANDLE, void *, void *, IO_STATUS_BLOCK *, ULONG, BOOLEAN, void *, ULONG,
                                 BOOLEAN);

#define KEY_ALL_ACCESS 0xf003f
#define KEY_READ 0x20019
#define REG_OPTION_VOLATILE 1
#define REG_OPTION_CREATE_LINK 2
#define REG_OPTION_OPEN_LINK 8
#define OBJ_OPENLINK 0x100

static unsigned char buf[1024];

static NTSTATUS create(HANDLE *h, HANDLE root, const WCHAR *name, ULONG options, const char *what)
{
    UNICODE_STRING us; OBJECT_ATTRIBUTES oa; ULONG disp = 0;
    nt_path(&us, &oa, name); oa.RootDirectory = root;
    NTSTATUS s = NtCreateKey(h, KEY_ALL_ACCESS, &oa, 0, 0, options, &disp);
    out(what); out(" = "); out_hex((unsigned long)s); out(" disposition "); out_dec(disp); out("\n");
    return s;
}

static NTSTATUS open_key(HANDLE *h, HANDLE root, const WCHAR *name, ULONG attrs, const char *what)
{
    UNICODE_STRING us; OBJECT_ATTRIBUTES oa;
    nt_path(&us, &oa, name); oa.RootDirectory = root; oa.Attributes |= attrs;
    *h = (HANDLE)1;
    NTSTATUS s = NtOpenKey(h, attrs & OBJ_OPENLINK ? KEY_READ | DELETE : KEY_READ, &oa);
    check(what, s);
    return s;
}

static void set(HANDLE k, const WCHAR *name, ULONG type, const void *data, ULONG size)
{
    UNICODE_STRING us; RtlInitUnicodeString(&us, name);
    NTSTATUS s = NtSetValueKey(k, &us, 0, type, data, size);
    if (s) check("set value", s);
}

static void query_partial(HANDLE k, const WCHAR *name, ULONG len)
{
    UNICODE_STRING us; ULONG got = 0; RtlInitUnicodeString(&us, name);
    nt_memset(buf, 0xee, sizeof buf);
    NTSTATUS s = NtQueryValueKey(k, &us, 2, buf, len, &got);
    KEY_VALUE_PARTIAL_INFORMATION *p = (void *)buf;
    out("  partial("); out_w(name, 32); out(", "); out_dec(len); out(") = "); out_hex((unsigned long)s);
    out(" result "); out_dec(got);
    if (len >= 12 && (s == 0 || s == (NTSTATUS)0x80000005)) {
        out(" type "); out_dec(p->Type); out(" length "); out_dec(p->DataLength); out(" data");
        for (ULONG i = 0; i < p->DataLength && 12 + i < len && i < 24; i++) { out(" "); out_hex(p->Data[i]); }
    }
    out("\n");
}

static void key_name(HANDLE k)
{
    ULONG got = 0;
    NTSTATUS s = NtQueryKey(k, 3, buf, sizeof buf, &got);
    KEY_NAME_INFORMATION *n = (void *)buf;
    out("  name = "); out_hex((unsigned long)s); out(" ");
    if (!s) out_w(n->Name, n->NameLength / 2);
    out("\n");
}

static void full_info(HANDLE k)
{
    ULONG got = 0;
    NTSTATUS s = NtQueryKey(k, 2, buf, sizeof buf, &got);
    KEY_FULL_INFORMATION *f = (void *)buf;
    out("  full = "); out_hex((unsigned long)s); out(" result "); out_dec(got);
    out(" subkeys "); out_dec(f->SubKeys); out(" maxname "); out_dec(f->MaxNameLen);
    out(" values "); out_dec(f->Values); out(" maxvaluename "); out_dec(f->MaxValueNameLen);
    out(" maxdata "); out_dec(f->MaxValueDataLen); out("\n");
    s = NtQueryKey(k, 2, buf, 8, &got);
    out("  full(8) = "); out_hex((unsigned long)s); out(" result "); out_dec(got); out("\n");
}

static void list_values(HANDLE k)
{
    for (ULONG i = 0;; i++) {
        ULONG got = 0;
        NTSTATUS s = NtEnumerateValueKey(k, i, 0, buf, sizeof buf, &got);
        if (s) { out("  values end = "); out_hex((unsigned long)s); out("\n"); break; }
        KEY_VALUE_BASIC_INFORMATION *b = (void *)buf;
        out("  value "); out_dec(i); out(" '"); out_w(b->Name, b->NameLength / 2); out("' type "); out_dec(b->Type);
        out(" result "); out_dec(got); out("\n");
    }
    ULONG got = 0;
    NTSTATUS s = NtEnumerateValueKey(k, 1, 1, buf, sizeof buf, &got);
    KEY_VALUE_FULL_INFORMATION *f = (void *)buf;
    out("  full value 1 = "); out_hex((unsigned long)s); out(" offset "); out_dec(f->DataOffset); out(" length ");
    out_dec(f->DataLength); out(" name "); out_dec(f->NameLength); out(" result "); out_dec(got); out("\n");
}

static void list_keys(HANDLE k)
{
    for (ULONG i = 0;; i++) {
        ULONG got = 0;
        NTSTATUS s = NtEnumerateKey(k, i, 0, buf, sizeof buf, &got);
        if (s) { out("  keys end = "); out_hex((unsigned long)s); out("\n"); break; }
        KEY_BASIC_INFORMATION *b = (void *)buf;
        out("  key "); out_dec(i); out(" '"); out_w(b->Name, b->NameLength / 2); out("' result "); out_dec(got);
        out("\n");
    }
}

int mainCRTStartup(void)
{
    HANDLE k, k2, sub0, sub1, link, ev; NTSTATUS s; ULONG got;
    const WCHAR *path = L"\\Registry\\Machine\\Software\\PysudTest";

    open_key(&k, 0, path, 0, "open missing");
    out("  handle after failure "); out_hex((ULONG_PTR)k); out("\n");
    if (create(&k, 0, path, 0, "create") != 0) return 1;
    create(&k2, 0, L"\\REGISTRY\\machine\\SOFTWARE\\pysudtest", 0, "create again");
    NtClose(k2);
    open_key(&k2, 0, L"Software\\PysudTest", 0, "open relative without root");
    open_key(&k2, 0, L"\\Registry\\Machine\\Software\\PysudTest\\Missing\\Deeper", 0, "open missing path");

    static const WCHAR hello[] = L"hello \"world\" \\ \x00e9";
    unsigned dw = 0x12345678; unsigned long long qw = 0x1122334455667788ull;
    static const unsigned char bin[] = {0, 1, 2, 0xfe, 0xff};
    static const WCHAR multi[] = L"one\0two\0";
    static const WCHAR expand[] = L"%SystemRoot%\\x";
    set(k, L"str", 1, hello, sizeof hello);
    set(k, L"DW", 4, &dw, 4);
    set(k, L"qw", 11, &qw, 8);
    set(k, L"Bin", 3, bin, sizeof bin);
    set(k, L"multi", 7, multi, sizeof multi);
    set(k, L"expand", 2, expand, sizeof expand);
    set(k, L"", 1, L"default", 16);
    set(k, L"none", 0, 0, 0);
    set(k, L"dw", 4, &dw, 2);   /* same name, other case: replaces the value, data shorter than a DWORD */

    query_partial(k, L"DW", sizeof buf);
    query_partial(k, L"qw", sizeof buf);
    query_partial(k, L"BIN", sizeof buf);
    query_partial(k, L"str", sizeof buf);
    query_partial(k, L"str", 16);
    query_partial(k, L"str", 8);
    query_partial(k, L"", sizeof buf);
    query_partial(k, L"none", sizeof buf);
    query_partial(k, L"missing", sizeof buf);
    {
        UNICODE_STRING us; RtlInitUnicodeString(&us, L"multi");
        s = NtQueryValueKey(k, &us, 0, buf, sizeof buf, &got);
        out("  basic = "); out_hex((unsigned long)s); out(" result "); out_dec(got); out("\n");
    }
    list_values(k);

    create(&sub1, k, L"Sub1", 0, "create Sub1");
    create(&sub0, k, L"sub0", REG_OPTION_VOLATILE, "create volatile sub0");
    create(&k2, sub0, L"child", 0, "create non-volatile child of volatile");
    create(&k2, k, L"Sub1\\Deep\\Deeper", 0, "create two levels");
    NtClose(k2);
    list_keys(k);
    full_info(k);
    key_name(k);
    key_name(sub1);

    s = NtDeleteKey(k); check("delete key with subkeys", s);
    {
        UNICODE_STRING us; RtlInitUnicodeString(&us, L"target");
        unsigned one = 1; set(sub1, L"target", 4, &one, 4);
        create(&link, k, L"Link", REG_OPTION_CREATE_LINK, "create link");
        static const WCHAR to[] = L"\\Registry\\Machine\\Software\\PysudTest\\Sub1";
        RtlInitUnicodeString(&us, L"SymbolicLinkValue");
        s = NtSetValueKey(link, &us, 0, 6 /* REG_LINK */, to, sizeof to - 2); check("set link target", s);
        NtClose(link);
        open_key(&link, k, L"Link", 0, "open through link");
        query_partial(link, L"target", sizeof buf);
        key_name(link);
        NtClose(link);
        open_key(&link, k, L"Link", OBJ_OPENLINK, "open link itself");
        key_name(link);
        s = NtDeleteKey(link); check("delete link", s);
        NtClose(link);
        open_key(&link, k, L"Link", 0, "open through deleted link");
        NtClose(link);
        s = NtOpenKey(&link, KEY_READ, 0); check("open without attributes", s);
    }

    s = NtCreateEvent(&ev, EVENT_ALL_ACCESS, 0, NotificationEvent, 0); check("event", s);
    {
        IO_STATUS_BLOCK io;
        LARGE_INTEGER t; t.QuadPart = -2000000;
        s = NtNotifyChangeKey(k, ev, 0, 0, &io, 0xf, 1, 0, 0, 1); check("notify", s);
        s = NtWaitForSingleObject(ev, 0, &t); check("wait before change", s);
        unsigned two = 2; set(sub1, L"other", 4, &two, 4);
        s = NtWaitForSingleObject(ev, 0, &t); check("wait after change in subtree", s);
    }
    s = NtFlushKey(k); check("flush", s);

    UNICODE_STRING us;
    RtlInitUnicodeString(&us, L"str"); s = NtDeleteValueKey(k, &us); check("delete value", s);
    s = NtDeleteValueKey(k, &us); check("delete value again", s);
    query_partial(k, L"str", sizeof buf);

    open_key(&k2, 0, L"\\Registry\\Machine\\Software\\PysudTest\\Sub1\\Deep\\Deeper", 0, "open deep");
    s = NtDeleteKey(k2); check("delete Deeper", s);
    s = NtQueryKey(k2, 0, buf, sizeof buf, &got); check("query deleted", s);
    s = NtDeleteKey(k2); check("delete deleted", s);
    NtClose(k2);
    open_key(&k2, sub1, L"Deep", 0, "open Deep"); s = NtDeleteKey(k2); check("delete Deep", s); NtClose(k2);
    s = NtDeleteKey(sub1); check("delete Sub1", s);
    s = NtDeleteKey(sub0); check("delete sub0 (child left)", s);
    open_key(&k2, sub0, L"child", 0, "open child"); s = NtDeleteKey(k2); check("delete child", s); NtClose(k2);
    s = NtDeleteKey(sub0); check("delete sub0 again", s);
    open_key(&k2, k, L"Sub1", 0, "open a deleted name");
    {
        HANDLE ro; open_key(&ro, 0, path, 0, "open read-only");
        unsigned one = 1; UNICODE_STRING v; RtlInitUnicodeString(&v, L"x");
        s = NtSetValueKey(ro, &v, 0, 4, &one, 4); check("  set through read-only handle", s);
        s = NtDeleteKey(ro); check("  delete through read-only handle", s);
        s = NtEnumerateKey(ro, 0, 0, buf, sizeof buf, &got); check("  enumerate through read-only handle", s);
        NtClose(ro);
    }
    list_keys(k);
    s = NtDeleteKey(k); check("delete key", s);
    open_key(&k2, 0, path, 0, "open deleted");
    s = NtSetValueKey(k, &us, 0, 4, &dw, 4); check("set on deleted", s);
    s = NtQueryKey(ev, 0, buf, sizeof buf, &got); check("query an event as a key", s);
    s = NtQueryKey((HANDLE)0x7770, 0, buf, sizeof buf, &got); check("query a bad handle", s);

    {   /* renames */
        HANDLE r, a, b; UNICODE_STRING nn;
        create(&r, 0, L"\\Registry\\Machine\\Software\\PysudRename", 0, "create for renames");
        create(&a, r, L"A", 0, "create A");
        create(&b, r, L"B", 0, "create B");
        RtlInitUnicodeString(&nn, L"C");
        s = NtRenameKey(a, &nn); check("rename A to C", s);
        key_name(a);
        RtlInitUnicodeString(&nn, L"b");
        s = NtRenameKey(a, &nn); check("rename C to b (taken)", s);
        RtlInitUnicodeString(&nn, L"x\\y");
        s = NtRenameKey(a, &nn); check("rename to a path", s);
        open_key(&k2, r, L"A", 0, "open A");
        open_key(&k2, r, L"c", 0, "open c");
        s = NtRenameKey(k2, &nn); check("rename through a read-only handle", s);
        NtClose(k2);
        list_keys(r);
        NtDeleteKey(a); NtDeleteKey(b);
        s = NtDeleteKey(r); check("delete the renames' key", s);
    }
    open_key(&k2, 0, L"\\Registry\\Machine\\Software\\Microsoft\\Windows NT\\CurrentVersion", 0, "open CurrentVersion");
    {
        UNICODE_STRING pn; RtlInitUnicodeString(&pn, L"ProductName");
        s = NtQueryValueKey(k2, &pn, 2, buf, sizeof buf, &got); check("  ProductName", s);
        out("  type "); out_dec(((KEY_VALUE_PARTIAL_INFORMATION *)buf)->Type); out("\n");
    }
    open_key(&k2, 0, L"\\Registry\\User\\S-1-5-21-0-0-0-1000\\Environment", 0, "open HKCU Environment");
    open_key(&k2, 0, L"\\Registry\\Machine\\System\\CurrentControlSet\\Control\\Session Manager\\Environment", 0,
             "open Session Manager Environment");
    return 0;
}
