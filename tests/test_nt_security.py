"""Tokens and security: a Windows program dumping its token (user, groups, privileges, elevation,
integrity...), duplicating it, adjusting privileges and running access checks prints what Wine
prints for the same .exe; SIDs and descriptors at the byte level."""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

import pytest

from conftest import requires_sud
from pysud.nt import registry as rg
from pysud.nt.kernel import security as sec
from pysud.nt.personality import NtPersonality
from test_nt import CC, build, requires_cc, requires_wine, run_wine
from test_nt import wine_env as wine_env  # the session's Wine prefix (fixture)
from test_nt_registry import NTDLLS, _run_pysud, unimplemented_kernel_calls
from test_nt_sync import Buf, Call, handler


@pytest.fixture(scope="module")
def token_exe(tmp_path_factory: pytest.TempPathFactory) -> str:
    if CC is None:
        pytest.skip("x86_64-w64-mingw32-gcc not installed")
    return build(str(tmp_path_factory.mktemp("nt-token")), "token")


@requires_sud
@requires_cc
@requires_wine
@pytest.mark.slow
@pytest.mark.parametrize("ntdll", NTDLLS)
def test_token_program_matches_wine(
    token_exe: str, wine_env: dict[str, str], tmp_path: Path, ntdll: str
) -> None:
    wine_out, wine_status = run_wine(wine_env, token_exe)
    ours = _run_pysud(token_exe, tmp_path, "--ntdll", ntdll)
    assert ours.returncode == wine_status == 0, ours.stderr.decode()
    assert ours.stdout.decode() == wine_out.decode()
    assert b"  S-1-5-21-0-0-0-1000 attributes 0x0\n" in wine_out


@requires_sud
@requires_cc
@pytest.mark.parametrize("ntdll", NTDLLS)
def test_token_calls_are_handled_here(token_exe: str, tmp_path: Path, ntdll: str) -> None:
    r = _run_pysud(token_exe, tmp_path, "--trace", "--ntdll", ntdll)
    err = r.stderr.decode()
    assert r.returncode == 0, err[-3000:]
    for call in ("NtOpenProcessToken", "NtQueryInformationToken", "NtAdjustPrivilegesToken", "NtAccessCheck"):
        assert f"[nt] {call}(" in err, call
    assert not unimplemented_kernel_calls(err)
    assert "open thread token = 0xc000007c\n" in r.stdout.decode()


def test_sids() -> None:
    for text in ("S-1-1-0", "S-1-5-21-0-0-0-1000", "S-1-16-12288", "S-1-5-5-0-5095"):
        data = sec.sid_bytes(text)
        assert sec.sid_text(data) == (text, len(data))
    assert sec.sid_bytes("S-1-5-32-544") == bytes.fromhex("01020000000000052000000020020000")
    with pytest.raises(ValueError):
        sec.sid_bytes("S-1-x")
    assert sec.USER == rg.USER_SID  # HKCU is \Registry\User\<the token's user>


def _sd(aces: list[tuple[int, int, str]]) -> ctypes.Array[ctypes.c_char]:
    owner = sec.sid_bytes("S-1-1-0")
    acl = sec._acl([(t, 0, m, s) for t, m, s in aces])
    return ctypes.create_string_buffer(
        struct.pack("<BBHIIII", 1, 0, 0x8004, 20, 20, 0, 20 + len(owner)) + owner + acl
    )


def test_access_check_denies_and_grants() -> None:
    nt = NtPersonality()
    try:
        tok, imp = Buf(), Buf()
        assert handler(nt, "NtOpenProcessToken")(Call(sec.CURRENT_PROCESS, 0, tok.addr)) == 0
        qos = ctypes.create_string_buffer(struct.pack("<IIBB2x", 12, sec.SecurityImpersonation, 0, 0))
        oa = ctypes.create_string_buffer(struct.pack("<I4xQQI4xQQ", 48, 0, 0, 0, 0, ctypes.addressof(qos)))
        assert handler(nt, "NtDuplicateToken")(Call(tok.u64(), 0, ctypes.addressof(oa), 0, 2, imp.addr)) == 0
        mapping = ctypes.create_string_buffer(struct.pack("<4I", 0x20001, 0x20002, 0x20000, 0x1F0003))
        check = handler(nt, "NtAccessCheck")

        def access(sd: ctypes.Array[ctypes.c_char], desired: int) -> tuple[int, int]:
            granted, status, plen = Buf(), Buf(), Buf()
            r = check(
                Call(
                    ctypes.addressof(sd),
                    imp.u64(),
                    desired,
                    ctypes.addressof(mapping),
                    0,
                    plen.addr,
                    granted.addr,
                    status.addr,
                )
            )
            assert r == 0
            return granted.u64() & 0xFFFFFFFF, status.u64() & 0xFFFFFFFF

        admins_denied = _sd([(1, 0x2, "S-1-5-32-544"), (0, 0x1F0003, "S-1-1-0")])
        assert access(admins_denied, 0x1) == (0x1, 0)
        assert access(admins_denied, 0x2) == (0, 0xC0000022)  # the token is in Administrators
        assert access(admins_denied, 0x80000000) == (0x20001, 0)  # GENERIC_READ mapped
        assert access(admins_denied, sec.MAXIMUM_ALLOWED) == (0x1F0001, 0)
        others_only = _sd([(0, 0x1F0003, "S-1-5-18")])
        assert access(others_only, 0x1) == (0, 0xC0000022)
    finally:
        nt.close()
