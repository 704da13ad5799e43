#!/usr/bin/env python3
# p11tool_pin.py - run pkcs11-tool (or any command that asks "PIN:" on its
# terminal) and type the PIN read from a file, so the PIN never appears in
# argv or the environment.  Test helper for throwaway tokens.
#   usage: p11tool_pin.py PIN_FILE command [args...]
import os
import pty
import sys
import termios
import time


def main():
    pin_file, cmd = sys.argv[1], sys.argv[2:]
    with open(pin_file, "rb") as f:
        pin = f.read().strip()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out, sent = b"", False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"PIN:" in out:
            # Type only once the prompt turned echo off: a flush of the
            # terminal (TCSAFLUSH) would otherwise discard the PIN.
            for _ in range(200):
                if not termios.tcgetattr(fd)[3] & termios.ECHO:
                    break
                time.sleep(0.01)
            os.write(fd, pin + b"\n")
            sent = True
    pin = None
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
    sys.exit(os.waitstatus_to_exitcode(status))


main()
