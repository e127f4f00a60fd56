# A real server for lab_lb.rs: answers every line of a TCP connection, and every UDP
# datagram, with its own label, so a client sees which server holds its flow, and for
# how long. Listens on every address of both families.
import asyncio
import socket
import sys

label = sys.argv[1].encode() + b"\n"
port = int(sys.argv[2])


async def handle(reader, writer):
    try:
        while await reader.readline():
            writer.write(label)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Udp(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(label, addr)


async def main():
    server = await asyncio.start_server(handle, None, port, reuse_address=True)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    await asyncio.get_running_loop().create_datagram_endpoint(Udp, sock=sock)
    async with server:
        await server.serve_forever()


asyncio.run(main())
