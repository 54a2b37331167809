/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The TPM layer of vaultd: seal/unseal a 32-byte key-encryption key (KEK) under the storage root
 * key, and an NV counter for anti-rollback. This header exposes no tss2 type: vaultd/tpm.c is the
 * only file in the project that includes tss2 headers.
 *
 * Every function returns >= 0 on success and -errno on failure; outputs are written only on
 * success. Nothing here logs: on failure tpm_last_error() describes what the TPM said. No handle
 * (object or session) stays loaded in the TPM between calls, on any path, with one exception: the
 * salted session of the counter bound by tpm_counter_bind(), loaded until the next bind or
 * tpm_close().
 *
 * Error classes callers may act on:
 *   -ENODEV   no TPM / cannot connect (TCTI)
 *   -EBUSY    the TPM is in dictionary-attack lockout
 *   -EPERM    the PCR values do not satisfy the sealed object's policy
 *   -EXDEV    wrong TPM: the parent's name differs from the pinned one, or the blob fails the
 *             TPM's integrity check (tampered, or made by another TPM); from the counter
 *             functions: the parent differs from the one tpm_seal()/tpm_unseal() used on this
 *             context, so no counter session is salted to it
 *   -EACCES   wrong authorization value (NV counter)
 *   -ENOENT   no such NV index
 *   -EBADMSG  a sealed blob that does not decode exactly
 *   -EMEDIUMTYPE  an NV index that is not a counter of the expected shape
 *   -EIO      any other TPM or transport failure
 */

#include <stddef.h>
#include <stdint.h>

struct tpm_ctx;

/* Sets OpenSSL up for tss2-esys, once per process, before any other use of OpenSSL in it;
 * -EIO if OpenSSL cannot be initialised. vaultd calls it first, and so does anything that
 * measures what a TPM command costs there (tests/bench/devtime). */
int tpm_openssl_init(void);

/* Open the TPM behind the TCTI configuration string (e.g. "device:/dev/tpmrm0",
 * "swtpm:path=/run/swtpm/sock"); tcti must not be NULL. On failure, tpm_last_error(NULL)
 * describes it (per thread). */
int tpm_open(const char *tcti, struct tpm_ctx **ret);
void tpm_close(struct tpm_ctx *t);
/* The last failure on t, or of tpm_open() in this thread if t is NULL; "" if none. Never secret. */
const char *tpm_last_error(const struct tpm_ctx *t);

/* A TPM name: nameAlg (2 bytes) followed by the digest; 34 bytes for SHA-256. Sized for
 * sizeof(TPMU_NAME) so any name the TPM returns fits. */
#define TPM_NAME_MAX 68
struct tpm_name {
        uint8_t buf[TPM_NAME_MAX];
        size_t len;
};

/* Persistent handle where a provisioned SRK is expected (TCG provisioning guidance). */
#define TPM_SRK_HANDLE 0x81000001u

/* Name of the storage parent (persistent SRK if it matches the TCG ECC P-256 template, else the
 * same template created transiently under the owner hierarchy). */
int tpm_parent_name(struct tpm_ctx *t, struct tpm_name *ret);

/* Big enough for a marshalled TPM2B_PUBLIC / TPM2B_PRIVATE of a sealed 32-byte object. */
#define TPM_SEALED_MAX 512
#define TPM_KEK_SIZE 32
struct tpm_sealed {
        uint8_t pub[TPM_SEALED_MAX];
        size_t pub_len;                 /* TPM2B_PUBLIC, marshalled (tss2-mu) */
        uint8_t priv[TPM_SEALED_MAX];
        size_t priv_len;                /* TPM2B_PRIVATE, marshalled */
        struct tpm_name parent;         /* parent name at seal time */
        uint32_t pcr_mask;              /* SHA256 PCRs bound (bit i = PCR i, i < 24), 0 = none */
};

int tpm_seal(struct tpm_ctx *t, const uint8_t kek[TPM_KEK_SIZE], uint32_t pcr_mask, struct tpm_sealed *ret);
int tpm_unseal(struct tpm_ctx *t, const struct tpm_sealed *s, uint8_t kek[TPM_KEK_SIZE]);
/* The same with an auth value on the sealed object (NULL: empty), so that unsealing needs it as
 * well as this TPM (and the PCR policy, which then also asserts the auth value). tpm_unseal_auth()
 * with a wrong (or missing) auth value: -EACCES. */
#define TPM_KEK_AUTH_SIZE 32
int tpm_seal_auth(struct tpm_ctx *t, const uint8_t kek[TPM_KEK_SIZE], uint32_t pcr_mask,
                  const uint8_t auth[TPM_KEK_AUTH_SIZE], struct tpm_sealed *ret);
int tpm_unseal_auth(struct tpm_ctx *t, const struct tpm_sealed *s, const uint8_t auth[TPM_KEK_AUTH_SIZE],
                    uint8_t kek[TPM_KEK_SIZE]);

/* Anti-rollback counters live in this NV range (owner, "reserved for platform/owner use"). */
#define TPM_COUNTER_FIRST 0x01500000u
#define TPM_COUNTER_LAST  0x0150FFFFu
#define TPM_COUNTER_AUTH_SIZE 32

/* Define a counter at index (-EEXIST if something is defined there) and advance it once; its
 * value is then above that of every counter undefined before on this TPM. */
int tpm_counter_define_at(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE], uint64_t *ret_value);
/* The same at a random free index of the range. */
int tpm_counter_define(struct tpm_ctx *t, const uint8_t auth[TPM_COUNTER_AUTH_SIZE], uint32_t *ret_index, uint64_t *ret_value);
/* 1: a counter of vaultd's shape is defined at index; 0: nothing is; -EMEDIUMTYPE: an index of
 * another shape. No auth value needed. */
int tpm_counter_probe(struct tpm_ctx *t, uint32_t index);
int tpm_counter_read(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE], uint64_t *ret_value);
int tpm_counter_increment(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE], uint64_t *ret_value);
int tpm_counter_undefine(struct tpm_ctx *t, uint32_t index);

/* Fast path for one counter: bind once (several TPM commands: it checks the index and starts a
 * salted HMAC session that it keeps loaded), after which each tpm_counter_bump() advances the
 * counter by one with one TPM command, authorized by that session, whose response HMAC is
 * verified (see tpm.c). The caller knows the new value (read + 1) and verifies it at the next
 * start. Only if the TPM lost the session (reset, restart) does a bump start a new one first. */
int tpm_counter_bind(struct tpm_ctx *t, uint32_t index, const uint8_t auth[TPM_COUNTER_AUTH_SIZE]);
int tpm_counter_bump(struct tpm_ctx *t);

/* Number of TPM commands sent on t since tpm_open() (Esys_* calls that reach the TPM; the
 * Startup in tpm_open() included). For benchmarks. */
uint64_t tpm_command_count(const struct tpm_ctx *t);
