"""An SMTP server for the API tests, on Python's standard smtpd (3.11).

Usage: smtp_sink.py OUT_DIR REFUSE_FIRST
Prints its port on the first line of stdout, then serves until killed.
Each accepted message is parsed and written to OUT_DIR/NNNN.json (subject,
to, message_id, body, attachments as base64). The first REFUSE_FIRST
messages are refused with a temporary 451; recipients starting with
"bounce" are refused for good (550).
"""
import asyncore
import base64
import email
import email.policy
import json
import os
import smtpd
import sys


class Sink(smtpd.SMTPServer):
    def __init__(self, out, refuse_first):
        super().__init__(("127.0.0.1", 0), None, decode_data=False)
        self.out = out
        self.refuse_first = refuse_first
        self.seen = 0
        self.accepted = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        if any(r.startswith("bounce") for r in rcpttos):
            return "550 5.1.1 no such mailbox"
        self.seen += 1
        if self.seen <= self.refuse_first:
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(data, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        parsed = {
            "mail_from": mailfrom,
            "rcpt_to": rcpttos,
            "subject": message["subject"],
            "to": message["to"],
            "from": message["from"],
            "message_id": message["message-id"],
            "body": body.get_content() if body else "",
            "attachments": [
                {
                    "name": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "base64": base64.b64encode(part.get_content()).decode(),
                }
                for part in message.iter_attachments()
            ],
        }
        self.accepted += 1
        path = os.path.join(self.out, "%04d.json" % self.accepted)
        with open(path + ".tmp", "w") as f:
            json.dump(parsed, f)
        os.rename(path + ".tmp", path)
        return None


def main():
    sink = Sink(sys.argv[1], int(sys.argv[2]))
    print(sink.socket.getsockname()[1], flush=True)
    asyncore.loop(timeout=0.2)


if __name__ == "__main__":
    main()
