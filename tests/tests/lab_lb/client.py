# The client of lab_lb.rs, printing one JSON object.
#
#   spread VIP PORT FIRST_PORT COUNT SRC...   COUNT short connections, source addresses
#       in turn and source ports from FIRST_PORT: which server answered each.
#   hold VIP PORT COUNT SECONDS SRC...        COUNT long-lived connections, each sending a
#       line every 50 ms for SECONDS: resets, other errors, the longest wait for an
#       answer, and whether a connection ever changed server.
#   udp VIP PORT FIRST_PORT COUNT SRC          COUNT datagrams, each from its own source
#       port: which server answered each.
#   big VIP PORT SIZE COUNT                   one connection sending COUNT lines of SIZE
#       bytes: how many answers came back, and from which server.
import asyncio
import json
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def spread(vip, port, first, count, srcs):
    seen = {}
    failed = []
    for i in range(count):
        src = (srcs[i % len(srcs)], first + i)
        try:
            s = socket.socket(family(vip))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.settimeout(3)
            s.bind(src)
            s.connect((vip, port))
            s.sendall(b"who\n")
            who = s.makefile().readline().strip()
            s.close()
            seen.setdefault(who, []).append(list(src))
        except OSError as e:
            failed.append([list(src), str(e)])
    print(json.dumps({"seen": seen, "failed": failed}))


async def one(vip, port, src, until, out):
    gap, label, resets, errors, changed, answers = 0.0, None, 0, [], False, 0
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(vip, port, local_addr=(src, 0)), 5
        )
    except (OSError, asyncio.TimeoutError) as e:
        out.append({"src": src, "errors": ["connect: " + repr(e)], "resets": 0})
        return
    last = time.monotonic()
    while time.monotonic() < until:
        try:
            writer.write(b"x\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                errors.append("closed")
                break
            now = time.monotonic()
            gap = max(gap, now - last)
            last = now
            answers += 1
            who = line.decode().strip()
            if label is not None and who != label:
                changed = True
            label = who
        except ConnectionResetError:
            resets += 1
            break
        except (OSError, asyncio.TimeoutError) as e:
            errors.append(repr(e))
            break
        await asyncio.sleep(0.05)
    writer.close()
    out.append(
        {
            "src": src,
            "server": label,
            "gap_ms": round(gap * 1000, 1),
            "resets": resets,
            "errors": errors,
            "changed": changed,
            "answers": answers,
        }
    )


async def hold(vip, port, count, seconds, srcs):
    out = []
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(one(vip, port, srcs[i % len(srcs)], until, out) for i in range(count))
    )
    print(json.dumps(out))


def udp(vip, port, first, count, srcs):
    seen = {}
    failed = []
    for i in range(count):
        src = (srcs[i % len(srcs)], first + i)
        s = socket.socket(family(vip), socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.bind(src)
            answer = None
            # A datagram may be lost: asked up to three times.
            for _ in range(3):
                s.sendto(b"who\n", (vip, port))
                try:
                    answer = s.recv(100).decode().strip()
                    break
                except socket.timeout:
                    continue
            if answer is None:
                failed.append([list(src), "no answer"])
            else:
                seen.setdefault(answer, []).append(list(src))
        except OSError as e:
            failed.append([list(src), str(e)])
        finally:
            s.close()
    print(json.dumps({"seen": seen, "failed": failed}))


def big(vip, port, size, count):
    out = {"answers": 0, "server": None, "error": None}
    try:
        s = socket.create_connection((vip, port), timeout=5)
        f = s.makefile("rb")
        for _ in range(count):
            s.sendall(b"y" * size + b"\n")
            line = f.readline()
            if not line:
                out["error"] = "closed"
                break
            out["answers"] += 1
            out["server"] = line.decode().strip()
        s.close()
    except OSError as e:
        out["error"] = str(e)
    print(json.dumps(out))


mode, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "big":
    big(vip, port, int(sys.argv[4]), int(sys.argv[5]))
elif mode == "udp":
    udp(vip, port, int(sys.argv[4]), int(sys.argv[5]), sys.argv[6:])
elif mode == "spread":
    spread(vip, port, int(sys.argv[4]), int(sys.argv[5]), sys.argv[6:])
else:
    asyncio.run(hold(vip, port, int(sys.argv[4]), float(sys.argv[5]), sys.argv[6:]))
