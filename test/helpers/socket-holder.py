#!/usr/bin/env python3
# What a systemd socket unit does, for the tests and the restart benchmark: hold one listening
# TCP socket on 127.0.0.1:PORT (without accepting on it) and run the service with it at fd 3,
# LISTEN_FDS=1 and LISTEN_PID set to the service's own pid, as often as told. Node cannot hold a
# listening socket without accepting on it, hence Python.
#   socket-holder.py PORT -- COMMAND...
# Prints {"holding":PORT} once listening; then each line on stdin: "start" runs COMMAND (its
# output goes to this process's), "stop" sends it SIGTERM and prints {"exited":CODE} once it
# exited; end of stdin stops it and exits.
import json
import os
import signal
import socket
import subprocess
import sys

port = int(sys.argv[1])
command = sys.argv[sys.argv.index('--') + 1:]
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(('127.0.0.1', port))
sock.listen(4096)
print(json.dumps({'holding': port}), flush=True)

child = None


def start():
    def at_fd_3():
        os.dup2(sock.fileno(), 3)
        os.set_inheritable(3, True)
    env = dict(os.environ, LISTEN_FDS='1')
    # LISTEN_PID is the service's own pid: the shell's, which exec keeps.
    # close_fds would close fd 3 again after preexec_fn put the socket there.
    return subprocess.Popen(['/bin/sh', '-c', 'LISTEN_PID=$$ exec "$@"', 'sh', *command], env=env, preexec_fn=at_fd_3, close_fds=False)


def stop():
    global child
    if child is None:
        return
    child.send_signal(signal.SIGTERM)
    code = child.wait()
    child = None
    print(json.dumps({'exited': code}), flush=True)


for line in sys.stdin:
    word = line.strip()
    if word == 'start' and child is None:
        child = start()
        print(json.dumps({'started': child.pid}), flush=True)
    elif word == 'stop':
        stop()
stop()
