"""A real SMTP server for amphi's tests (Debian's python3-aiosmtpd).

Listens on 127.0.0.1 on a free port and prints "listening PORT". Every message is kept as
DIR/NNN.eml, and its parts decoded by Python's email package as NNN.txt, NNN.html, NNN.ics and
NNN.headers (one "Name: value" line per header, decoded); then it prints "stored DIR/NNN", so the
test waits on lines, not on time. Stops when its standard input closes or after ten minutes.
"""

import asyncio
import email
import email.policy
import os
import sys

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.folder, "%03d" % self.count)
        raw = envelope.original_content or envelope.content
        with open(base + ".eml", "wb") as out:
            out.write(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with open(base + ".headers", "w", encoding="utf-8") as out:
            out.write("Envelope-To: %s\n" % ", ".join(envelope.rcpt_tos))
            for name in ("From", "To", "Reply-To", "Subject"):
                out.write("%s: %s\n" % (name, message.get(name, "")))
        extensions = {"text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics"}
        for part in message.walk():
            extension = extensions.get(part.get_content_type())
            if extension and not part.is_multipart():
                with open(base + extension, "w", encoding="utf-8", newline="") as out:
                    out.write(part.get_content())
        print("stored", base, flush=True)
        return "250 Message accepted"


async def main(folder):
    loop = asyncio.get_running_loop()
    store = Store(folder)
    server = await loop.create_server(lambda: SMTP(store), "127.0.0.1", 0)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), timeout=600)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except asyncio.TimeoutError:
        pass
