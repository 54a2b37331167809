/* SPDX-License-Identifier: MIT */
/*
 * Test-only TPM helpers (tpm-test.h): they look into the TPM (loaded handles, the lockout
 * counter) or change it (a PCR extend) in ways vaultd never needs, so they are linked into
 * tests/tpm/check_tpm only, on top of vaultd/libvaulttpm.a (through vaultd/tpm-internal.h).
 */
#include <errno.h>

#include <tss2/tss2_esys.h>

#include "tpm-internal.h"
#include "tpm-test.h"

static int count_handles(struct tpm_ctx *t, TPM2_HT type, unsigned *ret) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        TSS2_RC rc;

        tpm_count_command(t);
        rc = Esys_GetCapability(tpm_esys(t), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                (UINT32) type << TPM2_HR_SHIFT, TPM2_MAX_CAP_HANDLES, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to list handles", rc);
        *ret = cap->data.handles.count;
        Esys_Free(cap);
        return 0;
}

int tpm_test_count_loaded(struct tpm_ctx *t, unsigned *ret_objects, unsigned *ret_sessions) {
        unsigned objects, loaded, saved;
        int r;

        if (!t || !ret_objects || !ret_sessions)
                return -EINVAL;
        r = count_handles(t, TPM2_HT_TRANSIENT, &objects);
        if (r < 0)
                return r;
        r = count_handles(t, TPM2_HT_LOADED_SESSION, &loaded);
        if (r < 0)
                return r;
        r = count_handles(t, TPM2_HT_SAVED_SESSION, &saved);
        if (r < 0)
                return r;
        *ret_objects = objects;
        *ret_sessions = loaded + saved;
        return 0;
}

int tpm_test_pcr_extend(struct tpm_ctx *t, unsigned pcr) {
        TPML_DIGEST_VALUES digests = {
                .count = 1,
                .digests[0] = { .hashAlg = TPM2_ALG_SHA256, .digest.sha256 = { 0x5a, 0xa5, 0x01 } },
        };
        TSS2_RC rc;

        if (!t || pcr >= TPM_PCR_COUNT)
                return -EINVAL;
        tpm_count_command(t);
        rc = Esys_PCR_Extend(tpm_esys(t), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &digests);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to extend PCR", rc);
        return 0;
}

int tpm_test_lockout_counter(struct tpm_ctx *t, uint32_t *ret) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        TSS2_RC rc;
        int r = 0;

        if (!t || !ret)
                return -EINVAL;
        tpm_count_command(t);
        rc = Esys_GetCapability(tpm_esys(t), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                TPM2_PT_LOCKOUT_COUNTER, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_fail_rc(t, "Failed to read TPM properties", rc);
        if (cap->data.tpmProperties.count < 1 ||
            cap->data.tpmProperties.tpmProperty[0].property != TPM2_PT_LOCKOUT_COUNTER)
                r = tpm_fail(t, -EIO, "TPM did not report TPM2_PT_LOCKOUT_COUNTER");
        else
                *ret = cap->data.tpmProperties.tpmProperty[0].value;
        Esys_Free(cap);
        return r;
}
