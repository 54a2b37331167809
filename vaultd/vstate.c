/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "crypto.h"
#include "fault.h"
#include "tpm.h"
#include "vaultd.h"

_Static_assert(VAULTFILE_NAME_MAX == TPM_NAME_MAX, "vault file and TPM layer disagree on name size");
_Static_assert(VAULTFILE_BLOB_MAX == TPM_SEALED_MAX, "vault file and TPM layer disagree on blob size");
_Static_assert(VAULTFILE_KEK_LEN == TPM_KEK_SIZE, "KEK size");
_Static_assert(VAULTFILE_AUTH_LEN == TPM_COUNTER_AUTH_SIZE, "counter auth size");
_Static_assert(VAULTD_KEK_AUTH_LEN == TPM_KEK_AUTH_SIZE, "KEK auth size");

static int counter_undefine(struct vaultd *d, uint32_t index) {
        /* Test-only (docs/vault-file.md §7): fail as a TPM may refuse it. */
        if (fault_fail(VAULTD_FAULT_NV_UNDEFINE))
                return -EIO;
        return tpm_counter_undefine(d->tpm, index);
}

static void wipe_secrets(struct vaultd *d) {
        OPENSSL_cleanse(d->sec->kek, sizeof d->sec->kek);
        OPENSSL_cleanse(d->sec->counter_auth, sizeof d->sec->counter_auth);
        OPENSSL_cleanse(d->sec->new_kek, sizeof d->sec->new_kek);
        OPENSSL_cleanse(d->sec->new_auth, sizeof d->sec->new_auth);
        OPENSSL_cleanse(d->sec->kek_auth, sizeof d->sec->kek_auth);
        OPENSSL_cleanse(d->sec->vault_a, sizeof d->sec->vault_a);
        OPENSSL_cleanse(d->sec->vault_b, sizeof d->sec->vault_b);
}

static void failure_clear(struct vaultd *d) {
        d->failure = (struct vstate_failure) { .cause = VSTATE_CAUSE_NONE };
}

/* The failure r came from the TPM: keep what it said (tpm_last_error() lasts only until the next
 * TPM call) for the caller to report. */
static int failure_tpm(struct vaultd *d, int r) {
        d->failure.cause = VSTATE_CAUSE_TPM;
        snprintf(d->failure.reason, sizeof d->failure.reason, "%s", tpm_last_error(d->tpm));
        return r;
}

static int failure_key_file(struct vaultd *d, int r) {
        d->failure.cause = VSTATE_CAUSE_KEY_FILE;
        snprintf(d->failure.reason, sizeof d->failure.reason, "%s", keyfile_strerror(r));
        return r;
}

/* A refused vault is never used: its secrets are dropped from memory, and only an explicit
 * provision --force may replace its file. */
void vstate_refuse(struct vaultd *d, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(d->refusal, sizeof d->refusal, fmt, ap);
        va_end(ap);
        wipe_secrets(d);
        d->state = VAULT_REFUSED;
        d->status_gen++;
}

/* "7,16" for a PCR mask. */
static const char *pcr_list(uint32_t mask, char *buf, size_t size) {
        size_t len = 0;

        buf[0] = '\0';
        for (unsigned i = 0; i < 32 && len < size; i++)
                if (mask & (UINT32_C(1) << i)) {
                        int n = snprintf(buf + len, size - len, "%s%u", len ? "," : "", i);

                        if (n < 0)
                                break;
                        len += (size_t) n;
                }
        return buf;
}

static void sealed_from_header(const struct vaultfile_header *h, struct tpm_sealed *s) {
        *s = (struct tpm_sealed) { .pcr_mask = h->pcr_mask };
        memcpy(s->pub, h->sealed_pub, h->sealed_pub_len);
        s->pub_len = h->sealed_pub_len;
        memcpy(s->priv, h->sealed_priv, h->sealed_priv_len);
        s->priv_len = h->sealed_priv_len;
        memcpy(s->parent.buf, h->parent_name, h->parent_name_len);
        s->parent.len = h->parent_name_len;
}

/*
 * Which TPM errors are a verdict on the vault file. Refusing a file is not harmless: the
 * documented remedy, provision --force, destroys it. So only errors by which the TPM really says
 * "this is not a key/counter of mine" refuse the file; every other error (no TPM, transport,
 * lockout, a TPM asking to retry or still self-testing (-EAGAIN), object or session slots full
 * (-ENOSPC), out of memory, anything not recognised here) is a failure of the moment: vaultd exits
 * 1 and systemd tries again.
 *
 * Unsealing: -EXDEV (the blob fails the TPM's integrity check, or the parent's name differs) and
 * -EBADMSG (the sealed blob does not decode, or unseals to the wrong size). -EPERM (the PCR
 * policy) is a verdict too, reported on its own.
 */
static bool tpm_unseal_error_is_verdict(int r) {
        return r == -EXDEV || r == -EBADMSG;
}

/* The NV counter: no such index (-ENOENT), the file's auth value refused (-EACCES), an index of
 * another shape (-EMEDIUMTYPE) or outside vaultd's range (-EINVAL). */
static bool tpm_counter_error_is_verdict(int r) {
        return r == -ENOENT || r == -EACCES || r == -EMEDIUMTYPE || r == -EINVAL;
}

/* A vstate_load() failure that is no verdict on the file: forget whatever was unsealed. Every
 * such failure past storage_read() is the TPM's, unless the key file's was recorded. */
static int load_failed(struct vaultd *d, int r) {
        if (d->failure.cause == VSTATE_CAUSE_NONE)
                failure_tpm(d, r);
        wipe_secrets(d);
        return r;
}

/*
 * Start-up verification, in this order, each failure a distinct verdict:
 *   1. the file decodes (magic, version, bounds, exact size)      else: corrupt
 *   2. it was sealed under this TPM's storage parent               else: foreign
 *   3. the TPM unseals the KEK (with the key file's auth value if the file says so; a key
 *      file that cannot be read is no verdict: vaultd exits)      else: foreign / PCR policy /
 *                                                                       another key file
 *   4. the AEAD over header and payload verifies under the KEK     else: tampered
 *   5. the file names vaultd's counter (--nv-index); a file naming another index is one from
 *      before vaultd had that counter (an upgrade from per-vault counters, or another
 *      --nv-index), used only while vaultd's counter does not exist: once a provisioning has
 *      defined it, every such file is older than that provisioning       else: replaced
 *   6. the NV counter exists, takes the file's auth value          else: foreign / TPM cleared
 *   7. file counter vs TPM counter:
 *        equal          -> the normal case
 *        TPM + 1        -> crash after the file was written and before the counter advanced:
 *                          advance the counter once (the file is the newer generation, and
 *                          the server holds it as pending, protocol §6)
 *        lower          -> rollback: refused
 *        higher by > 1  -> cannot happen by crash alone: refused
 */
int vstate_load(struct vaultd *d) {
        struct vaultfile_header h;
        struct tpm_name name;
        struct tpm_sealed sealed;
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        uint64_t tpm_value;
        int r, ret = 0;

        failure_clear(d);
        r = storage_read(d->state_fd, &data, &len);
        if (r == -ENOENT) {
                d->state = VAULT_NONE;
                return 0;
        }
        if (r == -EBADMSG) {
                vstate_refuse(d, "refusing: vault file is not a regular file of plausible size (corrupt?)");
                return 0;
        }
        if (r < 0)
                return r;

        r = vaultfile_decode(data, len, &h);
        if (r == -EPROTONOSUPPORT) {
                vstate_refuse(d, "refusing: vault file has an unsupported format version");
                return 0;
        }
        if (r < 0) {
                vstate_refuse(d, "refusing: vault file is malformed (corrupt or tampered)");
                return 0;
        }

        r = tpm_parent_name(d->tpm, &name);
        if (r < 0)
                return load_failed(d, r);
        if (name.len != h.parent_name_len || memcmp(name.buf, h.parent_name, name.len) != 0) {
                vstate_refuse(d, "refusing: vault file was sealed by another TPM (foreign vault file)");
                return 0;
        }

        /* A KEK bound to the key file needs it: without it there is no verdict on the file (a
         * missing credential, a wrong setting), so vaultd exits and systemd retries. */
        if (h.kek_auth == VAULTFILE_KEK_AUTH_KEY_FILE) {
                r = d->cfg->key_file ? keyfile_auth(d->cfg->key_file, false, d->sec->kek_auth) : -ENOKEY;
                if (r < 0) {
                        failure_key_file(d, r);
                        return load_failed(d, r);
                }
        }
        sealed_from_header(&h, &sealed);
        r = tpm_unseal_auth(d->tpm, &sealed, h.kek_auth == VAULTFILE_KEK_AUTH_KEY_FILE ? d->sec->kek_auth : NULL,
                            d->sec->kek);
        OPENSSL_cleanse(d->sec->kek_auth, sizeof d->sec->kek_auth);
        if (r == -EPERM) {
                char pcrs[3 * 24 + 1];

                vstate_refuse(d, "refusing: PCR values do not satisfy the vault key's policy (PCRs %s changed "
                              "since it was sealed: boot chain or firmware changed?)",
                              pcr_list(h.pcr_mask, pcrs, sizeof pcrs));
                return 0;
        }
        if (r == -EACCES && h.kek_auth == VAULTFILE_KEK_AUTH_KEY_FILE) {
                vstate_refuse(d, "refusing: the vault key is bound to a key file, and '%s' is not that one "
                              "(wrong or replaced key file?)", d->cfg->key_file);
                return 0;
        }
        if (r == -EACCES) {
                /* An empty auth value refused: the object has another one (a tampered kek_auth). */
                vstate_refuse(d, "refusing: this TPM cannot unseal the vault key (foreign or tampered vault file)");
                return 0;
        }
        if (tpm_unseal_error_is_verdict(r)) {
                vstate_refuse(d, "refusing: this TPM cannot unseal the vault key (foreign or tampered vault file)");
                return 0;
        }
        if (r < 0)
                return load_failed(d, r);

        r = vaultfile_open(data, len, &h, d->sec->kek, d->sec->counter_auth, d->sec->vault_a);
        if (r < 0) {
                vstate_refuse(d, "refusing: vault file fails authentication (tampered)");
                return 0;
        }

        if (h.nv_index != d->cfg->nv_index) {
                r = tpm_counter_probe(d->tpm, d->cfg->nv_index);
                if (r == 1) {
                        vstate_refuse(d, "refusing: vault file predates the last provisioning: it names NV counter "
                                      "0x%08" PRIx32 ", vaultd's counter is 0x%08" PRIx32 " (replaced vault?)",
                                      h.nv_index, d->cfg->nv_index);
                        return 0;
                }
                if (r < 0 && r != -EMEDIUMTYPE)
                        return load_failed(d, r);
        }

        r = tpm_counter_read(d->tpm, h.nv_index, d->sec->counter_auth, &tpm_value);
        if (tpm_counter_error_is_verdict(r)) {
                vstate_refuse(d, "refusing: anti-rollback counter 0x%08" PRIx32 " is missing or not ours "
                              "(foreign or replaced vault file, or the TPM was cleared)", h.nv_index);
                return 0;
        }
        if (r < 0)
                return load_failed(d, r);

        if (h.counter == tpm_value) {
                /* the normal case */
        } else if (tpm_value != UINT64_MAX && h.counter == tpm_value + 1) {
                uint64_t v;

                r = tpm_counter_increment(d->tpm, h.nv_index, d->sec->counter_auth, &v);
                if (r < 0 && !tpm_counter_error_is_verdict(r))
                        return load_failed(d, r);
                if (r < 0 || v != h.counter) {
                        vstate_refuse(d, "refusing: could not advance the TPM counter to the vault file's generation");
                        return 0;
                }
                ret = 1;
        } else if (h.counter < tpm_value) {
                vstate_refuse(d, "refusing: vault file older than TPM counter (rollback?): file %" PRIu64
                              ", TPM %" PRIu64, h.counter, tpm_value);
                return 0;
        } else {
                vstate_refuse(d, "refusing: vault file ahead of TPM counter by more than one: file %" PRIu64
                              ", TPM %" PRIu64, h.counter, tpm_value);
                return 0;
        }

        /* Every later generation then costs one TPM command (tpm_counter_bump). */
        r = tpm_counter_bind(d->tpm, h.nv_index, d->sec->counter_auth);
        if (r < 0)
                return load_failed(d, r);
        d->hdr = h;
        d->vault = d->sec->vault_a;
        d->next = d->sec->vault_b;
        d->state = VAULT_READY;
        return ret;
}

void vstate_status(const struct vaultd *d, struct ipc_status_info *ret) {
        struct ipc_status_info s = { 0 };

        if (d->state == VAULT_READY) {
                s.provisioned = true;
                s.params = d->hdr.params;
                memcpy(s.server, d->hdr.server, sizeof s.server);
                s.nv_index = d->hdr.nv_index;
                s.counter = d->hdr.counter;
        }
        s.tpm_commands = d->tpm ? tpm_command_count(d->tpm) : 0;
        *ret = s;
}

/* Encrypt and write h with the given secrets and vault; the file buffer is not secret. */
static int write_file(struct vaultd *d, const struct vaultfile_header *h, const uint8_t *kek,
                      const uint8_t *auth, const uint8_t *vault) {
        size_t size = vaultfile_size(h), len;
        _cleanup_free_ uint8_t *buf = NULL;
        int r;

        if (size == 0)
                return -EINVAL;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        r = vaultfile_seal(h, kek, auth, vault, buf, size, &len);
        if (r < 0)
                return r;
        return storage_write(d->state_fd, buf, len);
}

/* Advance the bound counter past the file just made durable (one TPM command). On failure the
 * file on disk is the new generation and the vault in memory must not be used again: refuse
 * until a restart closes the window (counter == file - 1). */
static int counter_advance(struct vaultd *d) {
        if (tpm_counter_bump(d->tpm) >= 0)
                return 0;
        failure_tpm(d, -EIO);
        vstate_refuse(d, "refusing: the new vault file is written but the TPM counter could not be "
                      "advanced; restart vaultd");
        return -ENOTRECOVERABLE;
}

/*
 * A new generation becomes real in this order, so that a crash between any two steps leaves a
 * state the start-up rules recover from (docs/vault-file.md):
 *   1. the new file (epoch + 1, counter + 1) is durable;
 *   2. the TPM counter is advanced to counter + 1: from now on the old file is a rollback;
 *   3. the in-memory vault is swapped;
 * and only then does the caller release M5 and the session key.
 */
int vstate_commit(struct vaultd *d) {
        struct vaultfile_header h = d->hdr;
        int r;

        if (d->state != VAULT_READY)
                return -EINVAL;
        if (h.params.epoch == UINT64_MAX || h.counter == UINT64_MAX)
                return -EOVERFLOW;
        failure_clear(d);
        h.params.epoch++;
        h.counter++;
        r = crypto_random(h.iv, sizeof h.iv);
        if (r < 0)
                return r;

        fault_crash(VAULTD_FAULT_BEFORE_FILE);
        r = write_file(d, &h, d->sec->kek, d->sec->counter_auth, d->next);
        if (r == -ENOTRECOVERABLE) {
                /* The new file replaced the old one, but the rename is not known to be durable: a
                 * power loss may bring the old file back. Advancing the counter now could leave it
                 * ahead of that file (refused as a rollback: the vault lost); serving the old
                 * vault from memory would fall behind the new file. Neither: refuse until a
                 * restart reads whichever file is there (F == T, or F == T + 1, which it closes). */
                vstate_refuse(d, "refusing: the new vault file replaced the old one but the state directory "
                              "could not be synced; restart vaultd");
                return r;
        }
        if (r < 0)
                return r;
        fault_crash(VAULTD_FAULT_AFTER_FILE);

        /* One TPM command; the value it reaches (counter + 1) is checked at the next start. */
        r = counter_advance(d);
        if (r < 0)
                return r;
        fault_crash(VAULTD_FAULT_AFTER_COUNTER);

        {
                uint8_t *old = d->vault;

                d->vault = d->next;
                d->next = old;
                OPENSSL_cleanse(old, SV_VAULT_MAX);
        }
        d->hdr = h;
        d->status_gen++;
        return 0;
}

/*
 * Take vaultd's counter for a new vault whose predecessor's counter auth is not known (no vault,
 * a refused one, or one on another index): remove whatever counter of ours is at the index (its
 * auth value may be lost with a refused file) and define it anew with the new auth. The TPM
 * starts a redefined counter above the highest value an undefined one had, and the new auth
 * differs: every file of before is refused, by value and by auth. An index of another shape is
 * not ours to remove (-EMEDIUMTYPE, with the TPM layer's message).
 */
static int counter_take(struct vaultd *d, uint32_t index, const uint8_t *auth, uint64_t *ret_value) {
        int r;

        r = tpm_counter_probe(d->tpm, index);
        if (r < 0)
                return r;
        if (r == 1) {
                r = counter_undefine(d, index);
                if (r < 0)
                        return r;
        }
        return tpm_counter_define_at(d->tpm, index, auth, ret_value);
}

/*
 * Provision: a fresh KEK sealed by the TPM, the bundle's vault, and the next value of vaultd's
 * one long-lived NV counter (d->cfg->nv_index), so that no file of before, of this vault or of
 * any earlier one, can be loaded again (docs/vault-file.md §6). Two ways:
 *
 *  - the current vault is verified and on that counter: like a commit (§5), the new file with
 *    counter + 1 and the same counter auth is made durable, then the counter is advanced. A
 *    crash in between leaves F == T + 1, which the start closes; a failure before the file is
 *    durable leaves the old vault in use;
 *  - otherwise (no vault, a refused one, or a verified vault of before the one counter): the
 *    counter is (re)defined with a fresh auth value (counter_take()), then the file is written.
 *    A verified old vault keeps working until the new file is durable (its counter, elsewhere,
 *    is removed only after that; a file naming another index is refused from now on, as the
 *    counter exists).
 */
int vstate_provision(struct vaultd *d, const struct bundle *b, bool force) {
        struct vaultfile_header h = { 0 };
        struct tpm_sealed sealed;
        uint32_t index = d->cfg->nv_index, old_index = 0;
        bool advance;
        uint64_t value;
        int r;

        if (d->state != VAULT_NONE && !force)
                return -EEXIST;
        advance = d->state == VAULT_READY && d->hdr.nv_index == index;
        if (d->state == VAULT_READY && !advance)
                old_index = d->hdr.nv_index;
        failure_clear(d);
        if (advance && d->hdr.counter == UINT64_MAX)
                return -EOVERFLOW;

        r = crypto_random(d->sec->new_kek, sizeof d->sec->new_kek);
        if (r >= 0 && advance)
                memcpy(d->sec->new_auth, d->sec->counter_auth, sizeof d->sec->new_auth);
        else if (r >= 0)
                r = crypto_random(d->sec->new_auth, sizeof d->sec->new_auth);
        if (r >= 0)
                r = crypto_random(h.iv, sizeof h.iv);
        if (r < 0)
                goto out;
        if (d->cfg->key_file) {
                r = keyfile_auth(d->cfg->key_file, true, d->sec->kek_auth);
                if (r < 0) {
                        failure_key_file(d, r);
                        goto out;
                }
        }
        r = tpm_seal_auth(d->tpm, d->sec->new_kek, d->cfg->pcr_mask, d->cfg->key_file ? d->sec->kek_auth : NULL,
                          &sealed);
        OPENSSL_cleanse(d->sec->kek_auth, sizeof d->sec->kek_auth);
        if (r >= 0 && advance)
                value = d->hdr.counter + 1;
        else if (r >= 0)
                r = counter_take(d, index, d->sec->new_auth, &value);
        if (r < 0) {
                failure_tpm(d, r);
                goto out;
        }

        h.params = b->params;
        h.params.kex = b->kex;          /* §10: the vault file keeps it (version 3) */
        memcpy(h.server, b->server, sizeof h.server);
        memcpy(h.parent_name, sealed.parent.buf, sealed.parent.len);
        h.parent_name_len = sealed.parent.len;
        memcpy(h.sealed_pub, sealed.pub, sealed.pub_len);
        h.sealed_pub_len = sealed.pub_len;
        memcpy(h.sealed_priv, sealed.priv, sealed.priv_len);
        h.sealed_priv_len = sealed.priv_len;
        h.pcr_mask = sealed.pcr_mask;
        h.kek_auth = d->cfg->key_file ? VAULTFILE_KEK_AUTH_KEY_FILE : VAULTFILE_KEK_AUTH_NONE;
        h.nv_index = index;
        h.counter = value;

        r = write_file(d, &h, d->sec->new_kek, d->sec->new_auth, b->vault);
        if (r == -ENOTRECOVERABLE) {
                /* The new file is in place but may not survive a power loss: after a restart
                 * either file may be found, so no counter may go or advance. Refuse until then. */
                vstate_refuse(d, "refusing: the new vault file replaced the old one but the state directory "
                              "could not be synced; restart vaultd");
                goto out;
        }
        if (r < 0) {
                /* Nothing changed on disk. A verified vault of before the one counter stays
                 * loadable only while that counter does not exist: remove it again. */
                if (old_index != 0)
                        (void) counter_undefine(d, index);
                goto out;
        }

        if (advance) {
                fault_crash(VAULTD_FAULT_PROVISION_AFTER_FILE);
                /* One TPM command: from now on every older file is behind the counter. */
                r = counter_advance(d);
                if (r < 0)
                        goto out;
        }

        /* Durable: switch over. Both buffers are wiped whole first: the old vault may be larger
         * than the new one, and its tail must not outlive it. */
        memcpy(d->sec->kek, d->sec->new_kek, sizeof d->sec->kek);
        memcpy(d->sec->counter_auth, d->sec->new_auth, sizeof d->sec->counter_auth);
        OPENSSL_cleanse(d->sec->vault_a, sizeof d->sec->vault_a);
        OPENSSL_cleanse(d->sec->vault_b, sizeof d->sec->vault_b);
        d->vault = d->sec->vault_a;
        d->next = d->sec->vault_b;
        memcpy(d->vault, b->vault, vault_size(&b->params));
        d->hdr = h;
        d->state = VAULT_READY;
        d->refusal[0] = '\0';
        d->status_gen++;
        if (!advance) {
                r = tpm_counter_bind(d->tpm, index, d->sec->counter_auth);
                if (r < 0) {
                        /* The vault is durable and verified at the next start; until then refuse to use it. */
                        vstate_refuse(d, "refusing: cannot bind the new TPM counter; restart vaultd");
                        goto out;
                }
        }
        /* The replaced vault's own counter (a vault of before the one counter) is of no use any
         * more: its file is refused now that vaultd's counter exists. */
        if (old_index != 0 && old_index != index && counter_undefine(d, old_index) < 0)
                r = failure_tpm(d, 1);
out:
        OPENSSL_cleanse(d->sec->new_kek, sizeof d->sec->new_kek);
        OPENSSL_cleanse(d->sec->new_auth, sizeof d->sec->new_auth);
        return r;
}

void vstate_free(struct vaultd *d) {
        if (d->sec) {
                hs_device_wipe(&d->sec->hs);
                secmem_free(d->sec, sizeof *d->sec);
                d->sec = NULL;
        }
}
