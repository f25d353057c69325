/* Keras's dtype policy: which precision Conv2D and Dense multiply in
 * (run.c hands it to the layers as cnn_layer_io.bf16; kernels/gemm_bf16.c
 * does the products). Everything stored stays float32. */
#include <string.h>

#include "core/error.h"
#include "kernels/gemm.h"
#include "model/model.h"

static const char *const policy_names[] = {
    [CNN_DTYPE_POLICY_FLOAT32] = "float32",
    [CNN_DTYPE_POLICY_MIXED_BFLOAT16] = "mixed_bfloat16",
};
enum { POLICY_COUNT = sizeof policy_names / sizeof policy_names[0] };

const char *cnn_dtype_policy_name(cnn_dtype_policy policy)
{
    return (unsigned)policy < POLICY_COUNT ? policy_names[policy] : NULL;
}

cnn_status cnn_dtype_policy_from_name(const char *name, cnn_dtype_policy *out)
{
    for (int i = 0; name && i < POLICY_COUNT; i++) {
        if (strcmp(name, policy_names[i]) == 0) {
            *out = (cnn_dtype_policy)i;
            return CNN_OK;
        }
    }
    return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                    "dtype policy: expected float32 or mixed_bfloat16, got \"%s\"",
                    name ? name : "(null)");
}

cnn_status cnn_model_set_dtype_policy(cnn_model *m, cnn_dtype_policy policy)
{
    if (!m)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "set_dtype_policy: model is NULL");
    if (!cnn_dtype_policy_name(policy))
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT,
                        "set_dtype_policy: unknown policy %d (expected %d float32 or %d "
                        "mixed_bfloat16)",
                        (int)policy, (int)CNN_DTYPE_POLICY_FLOAT32,
                        (int)CNN_DTYPE_POLICY_MIXED_BFLOAT16);
    m->dtype_policy = policy;
    return CNN_OK;
}

cnn_dtype_policy cnn_model_dtype_policy(const cnn_model *m)
{
    return m ? m->dtype_policy : CNN_DTYPE_POLICY_FLOAT32;
}

bool cnn_bfloat16_supported(void) { return cnn_gemm_bf16_supported(); }
