# pysud run --hooks examples/fake_uname.py uname -n   -> prints pysud-demo, not this machine's name
import pysud


def hooks(d: pysud.Dispatcher) -> None:  # d: the program's dispatcher
    @d.on("uname")
    def uname(call: pysud.Syscall) -> int:
        result = call.native()  # the real uname(2) fills the struct utsname
        if result == 0:  # then the nodename field (65 bytes at offset 65) is rewritten
            call.write(call.args[0] + 65, b"pysud-demo".ljust(65, b"\0"))
        return result
