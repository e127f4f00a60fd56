# A real server for lab_lb.rs: answers every line of a connection with its own label,
# so a client sees which server holds its connection, and for how long.
import asyncio
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


async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", port, reuse_address=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
