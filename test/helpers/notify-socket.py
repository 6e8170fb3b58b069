#!/usr/bin/env python3
# What systemd does with NOTIFY_SOCKET, for the tests: a unix datagram socket at PATH; prints each
# message received as one JSON line, {"fields": {...}, "at": seconds}, and answers the barrier that
# systemd-notify waits on (sd_notify_barrier(3): it sends a file descriptor and waits until the
# receiver has closed it). Node cannot bind a datagram unix socket, hence Python.
#   notify-socket.py PATH
import array
import json
import os
import socket
import sys
import time

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({'bound': path}), flush=True)
while True:
    data, ancillary, _flags, _address = sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    fields = dict(line.split('=', 1) for line in data.decode().split('\n') if '=' in line)
    print(json.dumps({'fields': fields, 'at': time.monotonic()}), flush=True)
