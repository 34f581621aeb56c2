/*
 * Call-centre example for libirm: seal a CSV export of customer records for
 * a group, open it back, and print the rights, the row count, the text
 * encoding the export was saved in (Japanese Excel writes CP932) and the
 * records as UTF-8 text.
 *
 *   seal_and_open CSV SEALED [RECIPIENTS [RIGHTS]]   seal, then open
 *   seal_and_open --open SEALED                      open only
 *
 * RECIPIENTS defaults to "@support", RIGHTS (comma-separated names) to
 * "view,program". The device must be enrolled with `irm enroll`;
 * IRM_CONFIG_DIR chooses its configuration directory as for the CLI and
 * IRM_PASSPHRASE holds its passphrase.
 *
 * On failure it prints "error: <call>: status <N>: <detail>" and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irm.h"

static int fail(const char *call, irm_status status) {
  char detail[512];
  size_t written = 0;
  irm_last_error_message(detail, sizeof detail, &written);
  fprintf(stderr, "error: %s: status %d: %s\n", call, (int)status, detail);
  return 1;
}

/* "view,program" -> IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM; 0 for an unknown name. */
static uint32_t parse_rights(const char *names) {
  static const struct { const char *name; uint32_t bit; } known[] = {
      {"view", IRM_RIGHT_VIEW},     {"print", IRM_RIGHT_PRINT},
      {"copy", IRM_RIGHT_COPY},     {"export", IRM_RIGHT_EXPORT},
      {"program", IRM_RIGHT_PROGRAM},
  };
  uint32_t rights = 0;
  const char *p = names;
  while (*p != '\0') {
    size_t len = strcspn(p, ",");
    uint32_t bit = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
      if (strlen(known[i].name) == len && strncmp(known[i].name, p, len) == 0) {
        bit = known[i].bit;
      }
    }
    if (bit == 0) {
      return 0;
    }
    rights |= bit;
    p += len;
    if (*p == ',') {
      p++;
    }
  }
  return rights;
}

static void print_rights(uint32_t rights) {
  static const char *names[] = {"view", "print", "copy", "export", "program"};
  const char *sep = "";
  printf("rights: ");
  for (unsigned i = 0; i < 5; i++) {
    if (rights & (1u << i)) {
      printf("%s%s", sep, names[i]);
      sep = ",";
    }
  }
  printf("\n");
}

/* The name of an irm_text_encoding, as printed. */
static const char *encoding_name(irm_text_encoding encoding) {
  switch (encoding) {
  case IRM_TEXT_UTF8:
    return "UTF-8";
  case IRM_TEXT_UTF8_BOM:
    return "UTF-8 with BOM";
  case IRM_TEXT_UTF16LE:
    return "UTF-16LE";
  case IRM_TEXT_UTF16BE:
    return "UTF-16BE";
  case IRM_TEXT_CP932:
    return "CP932";
  }
  return "unknown"; /* a value added after this program was written */
}

static int seal(irm_client *client, const char *csv, const char *sealed,
                const char *recipients, uint32_t rights) {
  irm_policy *policy = NULL;
  char *file_id = NULL;
  irm_status status = irm_policy_new(&policy);
  if (status != IRM_OK) {
    return fail("irm_policy_new", status);
  }
  int rc = 0;
  if ((status = irm_policy_add_grant(policy, recipients, rights)) != IRM_OK) {
    rc = fail("irm_policy_add_grant", status);
  } else if ((status = irm_policy_set_classification(policy, "customer-records")) != IRM_OK) {
    rc = fail("irm_policy_set_classification", status);
  } else if ((status = irm_seal_file(client, policy, csv, sealed, &file_id)) != IRM_OK) {
    rc = fail("irm_seal_file", status);
  } else {
    printf("sealed %s into %s for %s (file id %s)\n", csv, sealed, recipients, file_id);
  }
  irm_string_free(file_id);
  irm_policy_free(policy);
  return rc;
}

static int open_and_count(irm_client *client, const char *sealed) {
  irm_document *doc = NULL;
  irm_status status = irm_open(client, sealed, &doc);
  if (status != IRM_OK) {
    return fail("irm_open", status);
  }
  int rc = 0;
  uint32_t rights = 0;
  uint64_t lease = 0, length = 0;
  char *name = NULL, *media = NULL;
  if ((status = irm_document_rights(doc, &rights)) != IRM_OK) {
    rc = fail("irm_document_rights", status);
    goto out;
  }
  print_rights(rights);
  if ((status = irm_document_lease_expires_in(doc, &lease)) != IRM_OK) {
    rc = fail("irm_document_lease_expires_in", status);
    goto out;
  }
  if ((status = irm_document_metadata(doc, &name, &media, &length)) != IRM_OK) {
    rc = fail("irm_document_metadata", status);
    goto out;
  }
  printf("file: %s (%s, %llu bytes), lease %llu s\n", name ? name : "(unnamed)",
         media ? media : "unknown type", (unsigned long long)length,
         (unsigned long long)lease);

  /* The plaintext: only with the program right, while the lease holds. */
  unsigned char buf[4096];
  size_t n = 0;
  unsigned long long lines = 0;
  unsigned char last = '\n';
  for (;;) {
    if ((status = irm_read(doc, buf, sizeof buf, &n)) != IRM_OK) {
      rc = fail("irm_read", status);
      goto out;
    }
    if (n == 0) {
      break;
    }
    for (size_t i = 0; i < n; i++) {
      lines += buf[i] == '\n';
    }
    last = buf[n - 1];
  }
  if (last != '\n') {
    lines++; /* a last line without its newline */
  }
  printf("rows: %llu\n", lines > 0 ? lines - 1 : 0);
  memset(buf, 0, sizeof buf);

  /* The bytes above are in whatever encoding the export was saved in; ask
   * which, then take the text converted to UTF-8 (a library buffer, wiped
   * and freed by irm_buffer_free). */
  irm_text_encoding encoding;
  if ((status = irm_document_text_encoding(doc, &encoding)) != IRM_OK) {
    rc = fail("irm_document_text_encoding", status);
    goto out;
  }
  printf("encoding: %s\n", encoding_name(encoding));
  uint8_t *text = NULL;
  size_t text_len = 0;
  int had_errors = 0;
  if ((status = irm_document_text_utf8(doc, &text, &text_len, &had_errors)) != IRM_OK) {
    rc = fail("irm_document_text_utf8", status);
    goto out;
  }
  /* The first line names the columns. */
  const char *start = (const char *)text;
  size_t first_line = 0;
  while (first_line < text_len && start[first_line] != '\n' && start[first_line] != '\r') {
    first_line++;
  }
  printf("columns: %.*s\n", (int)first_line, text_len > 0 ? start : "");
  if (had_errors) {
    printf("warning: some bytes were not valid %s and show as U+FFFD\n", encoding_name(encoding));
  }
  printf("text (UTF-8, %zu bytes):\n%.*s", text_len, (int)text_len, text_len > 0 ? start : "");
  if (text_len > 0 && start[text_len - 1] != '\n') {
    printf("\n");
  }
  irm_buffer_free(text, text_len);

out:
  irm_string_free(name);
  irm_string_free(media);
  irm_close(doc);
  return rc;
}

int main(int argc, char **argv) {
  const char *passphrase = getenv("IRM_PASSPHRASE");
  int open_only = argc == 3 && strcmp(argv[1], "--open") == 0;
  if (passphrase == NULL || (!open_only && (argc < 3 || argc > 5))) {
    fprintf(stderr,
            "usage: seal_and_open CSV SEALED [RECIPIENTS [RIGHTS]]\n"
            "       seal_and_open --open SEALED\n"
            "(IRM_PASSPHRASE in the environment; IRM_CONFIG_DIR optional)\n");
    return 2;
  }
  irm_client *client = NULL;
  irm_status status = irm_client_open(NULL, passphrase, &client);
  if (status != IRM_OK) {
    return fail("irm_client_open", status);
  }
  int rc;
  if (open_only) {
    rc = open_and_count(client, argv[2]);
  } else {
    const char *recipients = argc > 3 ? argv[3] : "@support";
    uint32_t rights = parse_rights(argc > 4 ? argv[4] : "view,program");
    if (rights == 0) {
      fprintf(stderr, "error: unknown right in %s\n", argv[4]);
      rc = 2;
    } else {
      rc = seal(client, argv[1], argv[2], recipients, rights);
      if (rc == 0) {
        rc = open_and_count(client, argv[2]);
      }
    }
  }
  irm_client_free(client);
  return rc;
}
