#!/usr/bin/env python3
"""Call-centre example for libirm through ctypes: seal a CSV export of
customer records for a group, open it back, print the rights, the row count,
the text encoding the export was saved in (Japanese Excel writes CP932) and
the records as text.

    python3 seal_and_open.py CSV SEALED [RECIPIENTS]

RECIPIENTS defaults to "@support". The device must be enrolled with
`irm enroll`; IRM_CONFIG_DIR chooses its configuration directory as for the
CLI, IRM_PASSPHRASE holds its passphrase, and LIBIRM names libirm.so
(default: this repository's target/release/libirm.so if it was built, else
target/debug/libirm.so, the rule of examples/Makefile).
"""

import ctypes
import os
import sys
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint32, c_uint64, c_void_p

IRM_OK = 0
IRM_RIGHT_VIEW = 1 << 0
IRM_RIGHT_PROGRAM = 1 << 4
RIGHT_NAMES = ["view", "print", "copy", "export", "program"]
# irm_text_encoding (irm.h); 0 is never returned.
ENCODING_NAMES = {1: "UTF-8", 2: "UTF-8 with BOM", 3: "UTF-16LE", 4: "UTF-16BE", 5: "CP932"}


class IrmError(Exception):
    def __init__(self, call, status, detail):
        super().__init__(f"{call}: status {status}: {detail}")
        self.status = status


def load(path):
    lib = ctypes.CDLL(path)
    handle = c_void_p  # opaque irm_client / irm_policy / irm_document
    sigs = {
        "irm_last_error_message": ([ctypes.c_char_p, c_size_t, POINTER(c_size_t)], c_int),
        "irm_client_open": ([c_char_p, c_char_p, POINTER(handle)], c_int),
        "irm_client_free": ([handle], None),
        "irm_policy_new": ([POINTER(handle)], c_int),
        "irm_policy_add_grant": ([handle, c_char_p, c_uint32], c_int),
        "irm_policy_set_classification": ([handle, c_char_p], c_int),
        "irm_policy_free": ([handle], None),
        # file_id_out is a char ** owned by us until irm_string_free: keep it a c_void_p.
        "irm_seal_file": ([handle, handle, c_char_p, c_char_p, POINTER(c_void_p)], c_int),
        "irm_string_free": ([c_void_p], None),
        "irm_open": ([handle, c_char_p, POINTER(handle)], c_int),
        "irm_document_rights": ([handle, POINTER(c_uint32)], c_int),
        "irm_read": ([handle, c_void_p, c_size_t, POINTER(c_size_t)], c_int),
        # irm_text_encoding is a C enum: an int.
        "irm_document_text_encoding": ([handle, POINTER(c_int)], c_int),
        # The text is a uint8_t ** owned by us until irm_buffer_free: keep it a c_void_p.
        "irm_document_text_utf8": ([handle, POINTER(c_void_p), POINTER(c_size_t), POINTER(c_int)], c_int),
        "irm_buffer_free": ([c_void_p, c_size_t], None),
        "irm_close": ([handle], None),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    return lib


def default_libirm():
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "target")
    release = os.path.join(target, "release", "libirm.so")
    return release if os.path.exists(release) else os.path.join(target, "debug", "libirm.so")


def check(lib, call, status):
    if status != IRM_OK:
        buf = ctypes.create_string_buffer(512)
        written = c_size_t(0)
        lib.irm_last_error_message(buf, len(buf), byref(written))
        raise IrmError(call, status, buf.value.decode("utf-8", "replace"))


def main(argv):
    if len(argv) not in (3, 4) or "IRM_PASSPHRASE" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    csv, sealed = argv[1], argv[2]
    recipients = argv[3] if len(argv) > 3 else "@support"
    lib = load(os.environ.get("LIBIRM") or default_libirm())

    client = c_void_p()
    check(lib, "irm_client_open",
          lib.irm_client_open(None, os.environ["IRM_PASSPHRASE"].encode(), byref(client)))
    try:
        policy = c_void_p()
        check(lib, "irm_policy_new", lib.irm_policy_new(byref(policy)))
        try:
            check(lib, "irm_policy_add_grant", lib.irm_policy_add_grant(
                policy, recipients.encode(), IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM))
            check(lib, "irm_policy_set_classification",
                  lib.irm_policy_set_classification(policy, b"customer-records"))
            file_id = c_void_p()
            check(lib, "irm_seal_file", lib.irm_seal_file(
                client, policy, csv.encode(), sealed.encode(), byref(file_id)))
            print(f"sealed {csv} into {sealed} for {recipients} "
                  f"(file id {ctypes.string_at(file_id.value).decode()})")
            lib.irm_string_free(file_id)
        finally:
            lib.irm_policy_free(policy)

        doc = c_void_p()
        check(lib, "irm_open", lib.irm_open(client, sealed.encode(), byref(doc)))
        try:
            rights = c_uint32(0)
            check(lib, "irm_document_rights", lib.irm_document_rights(doc, byref(rights)))
            names = [n for i, n in enumerate(RIGHT_NAMES) if rights.value & (1 << i)]
            print("rights: " + ",".join(names))
            buf = ctypes.create_string_buffer(4096)
            n = c_size_t(0)
            lines, last = 0, b"\n"
            while True:
                check(lib, "irm_read", lib.irm_read(doc, buf, len(buf), byref(n)))
                if n.value == 0:
                    break
                chunk = buf.raw[: n.value]
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            if last != b"\n":
                lines += 1
            ctypes.memset(buf, 0, len(buf))
            print(f"rows: {max(lines - 1, 0)}")

            # The bytes above are in the encoding the export was saved in;
            # libirm says which, and converts them to UTF-8.
            encoding = c_int(0)
            check(lib, "irm_document_text_encoding",
                  lib.irm_document_text_encoding(doc, byref(encoding)))
            name = ENCODING_NAMES.get(encoding.value, "unknown")
            print(f"encoding: {name}")
            text_ptr, text_len, had_errors = c_void_p(), c_size_t(0), c_int(0)
            check(lib, "irm_document_text_utf8", lib.irm_document_text_utf8(
                doc, byref(text_ptr), byref(text_len), byref(had_errors)))
            try:
                text = ctypes.string_at(text_ptr, text_len.value).decode("utf-8") if text_len.value else ""
            finally:
                lib.irm_buffer_free(text_ptr, text_len)  # wipes, then frees; NULL is fine
            first_line = text.splitlines()[0] if text else ""
            print(f"columns: {first_line}")
            if had_errors.value:
                print(f"warning: some bytes were not valid {name} and show as U+FFFD")
            print(f"text (UTF-8, {text_len.value} bytes):")
            print(text, end="" if text.endswith("\n") else "\n")
        finally:
            lib.irm_close(doc)
    except IrmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        lib.irm_client_free(client)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
