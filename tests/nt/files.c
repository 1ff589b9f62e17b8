/* Files: create, write, read back, seek, query size and position, overwrite, delete; error statuses. */
#include "nt.h"

static const WCHAR DIR[] = L"\\??\\C:\\pysud-files";
static const WCHAR PATH[] = L"\\??\\C:\\PYSUD-files\\Data.TXT";   /* case differs on purpose */
static const WCHAR PATH2[] = L"\\??\\c:\\pysud-files\\data.txt";

int mainCRTStartup(void)
{
    UNICODE_STRING us; OBJECT_ATTRIBUTES oa; IO_STATUS_BLOCK io; HANDLE d, h; NTSTATUS s;
    char buf[64];

    nt_path(&us, &oa, DIR);
    s = NtCreateFile(&d, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, 0, 0, FILE_SHARE_READ | FILE_SHARE_WRITE,
                     FILE_CREATE, FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, 0, 0);
    check("mkdir", s); out("mkdir info "); out_dec(io.Information); out("\n");

    nt_path(&us, &oa, PATH);
    s = NtCreateFile(&h, GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE, &oa, &io, 0, FILE_ATTRIBUTE_NORMAL, 0,
                     FILE_CREATE, FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, 0, 0);
    check("create", s); out("create info "); out_dec(io.Information); out("\n");
    s = NtWriteFile(h, 0, 0, 0, &io, "hello, file world\n", 18, 0, 0);
    check("write", s); out("written "); out_dec(io.Information); out("\n");

    FILE_STANDARD_INFORMATION std;
    s = NtQueryInformationFile(h, &io, &std, sizeof std, FileStandardInformation);
    check("query standard", s); out("size "); out_dec(std.EndOfFile.QuadPart); out(" dir "); out_dec(std.Directory); out("\n");

    LARGE_INTEGER pos; pos.QuadPart = 7;
    s = NtSetInformationFile(h, &io, &pos, sizeof pos, FilePositionInformation);
    check("seek", s);
    nt_memset(buf, 0, sizeof buf);
    s = NtReadFile(h, 0, 0, 0, &io, buf, 10, 0, 0);
    check("read", s); out("read "); out_dec(io.Information); out(" '"); out(buf); out("'\n");
    s = NtQueryInformationFile(h, &io, &pos, sizeof pos, FilePositionInformation);
    check("query position", s); out("position "); out_dec(pos.QuadPart); out("\n");

    LARGE_INTEGER at; at.QuadPart = 0;
    nt_memset(buf, 0, sizeof buf);
    s = NtReadFile(h, 0, 0, 0, &io, buf, 5, &at, 0);
    check("pread", s); out("pread '"); out(buf); out("'\n");
    at.QuadPart = 100;
    s = NtReadFile(h, 0, 0, 0, &io, buf, 5, &at, 0);
    check("read past end", s); out("read past end info "); out_dec(io.Information); out("\n");
    NtClose(h);

    /* open again (other case), overwrite, truncate */
    nt_path(&us, &oa, PATH2);
    s = NtCreateFile(&h, GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE, &oa, &io, 0, 0, 0, FILE_OVERWRITE_IF,
                     FILE_SYNCHRONOUS_IO_NONALERT, 0, 0);
    check("overwrite", s); out("overwrite info "); out_dec(io.Information); out("\n");
    s = NtWriteFile(h, 0, 0, 0, &io, "0123456789", 10, 0, 0);
    LARGE_INTEGER eof; eof.QuadPart = 4;
    s = NtSetInformationFile(h, &io, &eof, sizeof eof, FileEndOfFileInformation);
    check("truncate", s);
    s = NtQueryInformationFile(h, &io, &std, sizeof std, FileStandardInformation);
    out("size "); out_dec(std.EndOfFile.QuadPart); out("\n");
    NtClose(h);

    FILE_BASIC_INFORMATION basic;
    s = NtQueryAttributesFile(&oa, &basic);
    check("attributes", s); out("attributes "); out_hex(basic.FileAttributes & 0x10); out("\n");

    /* errors */
    s = NtCreateFile(&h, GENERIC_READ | SYNCHRONIZE, &oa, &io, 0, 0, 0, FILE_CREATE, FILE_SYNCHRONOUS_IO_NONALERT, 0, 0);
    check("create existing", s);
    UNICODE_STRING us2; OBJECT_ATTRIBUTES oa2;
    nt_path(&us2, &oa2, L"\\??\\C:\\pysud-files\\missing.txt");
    s = NtOpenFile(&h, GENERIC_READ | SYNCHRONIZE, &oa2, &io, 0, FILE_SYNCHRONOUS_IO_NONALERT);
    check("open missing", s);
    nt_path(&us2, &oa2, L"\\??\\C:\\no-such-dir\\x.txt");
    s = NtOpenFile(&h, GENERIC_READ | SYNCHRONIZE, &oa2, &io, 0, FILE_SYNCHRONOUS_IO_NONALERT);
    check("open in missing dir", s);
    s = NtClose((HANDLE)0x12340);
    check("close bad handle", s);

    s = NtDeleteFile(&oa);
    check("delete", s);
    s = NtQueryAttributesFile(&oa, &basic);
    check("attributes after delete", s);
    NtClose(d);
    nt_path(&us, &oa, DIR);
    s = NtDeleteFile(&oa);
    check("rmdir", s);
    return 0;
}
