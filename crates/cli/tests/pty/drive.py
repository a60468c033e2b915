"""Drives an interactive container through a real pty, as a person would.

Usage: drive.py RUNTIME STATE_ROOT BUNDLE ID [exec]
       drive.py -- COMMAND [ARG...]
Runs `RUNTIME --root STATE_ROOT run -b BUNDLE ID` (whose config runs `sh`
with a terminal) or, with `exec`, `RUNTIME --root STATE_ROOT exec -t ID sh`
into a running container, or any COMMAND that gives an interactive `sh` in a
container (`podman run -it …`), on the slave side of a fresh pty, types into the master,
and checks: the window size reaches the container and follows a resize
(SIGWINCH), Ctrl-C interrupts the container's foreground job, `exit 3` comes
back as the runtime's exit status, and the terminal's mode is what it was
before. Prints one line per check; exits 1 if any failed.
"""
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import fcntl

if sys.argv[1] == "--":
    argv = sys.argv[2:]
else:
    runtime, root, bundle, cid = sys.argv[1:5]
    mode = sys.argv[5] if len(sys.argv) > 5 else "run"
    if mode == "exec":
        argv = [runtime, "--root", root, "exec", "-t", cid, "sh"]
    else:
        argv = [runtime, "--root", root, "run", "-b", bundle, cid]
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
before = termios.tcgetattr(slave)
proc = subprocess.Popen(
    argv,
    stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
)


def read(seconds=2.0, until=None):
    out, end = b"", time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
            if until and until in out:
                break
    return out.decode(errors="replace")


failed = 0


def check(name, ok, detail=""):
    global failed
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + repr(detail)))
    failed += 0 if ok else 1


read(3, b"# ")
during = termios.tcgetattr(slave)
check("raw mode while running", not during[3] & termios.ECHO, during[3])
os.write(master, b"stty size\n")
out = read(until=b"30 100")
check("window size reaches the container", "30 100" in out, out)
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
os.kill(proc.pid, signal.SIGWINCH)
time.sleep(0.2)
os.write(master, b"stty size\n")
out = read(until=b"40 120")
check("a resize follows (SIGWINCH)", "40 120" in out, out)
os.write(master, b"tty\n")
out = read(until=b"/dev/pts/")
check("a real terminal inside", "/dev/pts/" in out, out)
os.write(master, b"sleep 100; echo not-interrupted\n")
time.sleep(0.5)
os.write(master, b"\x03")
os.write(master, b"echo after-$((20+22))\n")
out = read(until=b"after-42")
lines = [line.strip() for line in out.split("\n")]
# Typed input is echoed; only an output line of its own would mean the sleep
# ran to its end and the echo after it ran.
check("Ctrl-C reaches the container", "after-42" in lines and "not-interrupted" not in lines, out)
os.write(master, b"exit 3\n")
read(1)
try:
    code = proc.wait(timeout=10)
except subprocess.TimeoutExpired:
    proc.kill()
    code = None
check("exit status comes back", code == 3, code)
after = termios.tcgetattr(slave)
check("terminal mode restored", after == before, (before, after))
print(f"pty: {5 + 2 - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
