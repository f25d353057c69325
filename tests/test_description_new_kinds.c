/* Issue 15's kinds in descriptions: the Keras JSON Keras 2 and Keras 3
 * write for them (LayerNormalization's axis as [3] and Keras 3's
 * rms_scaling, Softmax's axis, Conv2DTranspose's output_padding null or a
 * pair, Cropping2D's all-zero cropping) and the text format's spellings,
 * each read into the right configuration or refused naming the layer and
 * the argument. The round trip of every argument through both formats is
 * test_layer_golden's (layers_c). */
#include "test.h"

/* A Sequential of one layer after an (8, 8, 2) input. spec_of gives its
 * spec (whose name dies with the model: not compared). */
static cnn_status json_layer(const char *layer, cnn_model **m)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 8, 8, 2],"
             " \"name\": \"in\"}}, %s]}}",
             layer);
    return cnn_model_from_description_memory(text, strlen(text), "m.json", m);
}

static cnn_layer_spec spec_of(const char *layer)
{
    cnn_model *m = NULL;
    cnn_layer_spec s;
    memset(&s, 0, sizeof s);
    CHECK_OK(json_layer(layer, &m));
    if (m)
        CHECK_OK(cnn_model_layer_spec(m, 0, &s));
    cnn_model_free(m);
    return s;
}

#define JSON_FAILS(layer, want)                                                    \
    do {                                                                           \
        cnn_model *bad_ = NULL;                                                    \
        CHECK_FAILS(json_layer((layer), &bad_), CNN_ERR_FORMAT, (want));           \
        CHECK(bad_ == NULL);                                                       \
    } while (0)

static void test_json(void)
{
    /* Keras 2.12 builds LayerNormalization's axis into [3]; Keras 3 writes
     * rms_scaling */
    cnn_layer_spec s = spec_of(
        "{\"class_name\": \"LayerNormalization\", \"config\": {\"name\": \"ln\", \"axis\": [3],"
        " \"epsilon\": 0.0001, \"center\": false, \"scale\": true, \"rms_scaling\": false,"
        " \"beta_initializer\": {\"class_name\": \"Zeros\", \"config\": {}}}}");
    CHECK(s.kind == CNN_LAYER_LAYER_NORMALIZATION && s.u.layer_normalization.epsilon == 1e-4f
          && s.u.layer_normalization.no_center && !s.u.layer_normalization.no_scale);
    JSON_FAILS("{\"class_name\": \"LayerNormalization\", \"config\": {\"name\": \"ln\","
               " \"axis\": [1, 2, 3]}}",
               "layers[1] 'ln' (LayerNormalization): axis [1,2,3] is not supported");
    JSON_FAILS("{\"class_name\": \"LayerNormalization\", \"config\": {\"name\": \"ln\","
               " \"rms_scaling\": true}}",
               "layers[1] 'ln' (LayerNormalization): rms_scaling true is not supported");
    s = spec_of("{\"class_name\": \"Softmax\", \"config\": {\"name\": \"sm\", \"axis\": -1}}");
    CHECK(s.kind == CNN_LAYER_SOFTMAX);
    JSON_FAILS("{\"class_name\": \"Softmax\", \"config\": {\"name\": \"sm\", \"axis\": 1}}",
               "layers[1] 'sm' (Softmax): axis 1 is not supported");
    /* output_padding: null is Keras's None, a pair is set */
    s = spec_of("{\"class_name\": \"Conv2DTranspose\", \"config\": {\"name\": \"ct\","
                " \"filters\": 3, \"kernel_size\": [3, 3], \"strides\": [2, 2], \"padding\":"
                " \"same\", \"groups\": 1, \"output_padding\": null}}");
    CHECK(s.kind == CNN_LAYER_CONV2D_TRANSPOSE && !s.u.conv2d_transpose.output_padding.set);
    s = spec_of("{\"class_name\": \"Conv2DTranspose\", \"config\": {\"name\": \"ct\","
                " \"filters\": 3, \"kernel_size\": 3, \"strides\": 2, \"output_padding\": [1, 0]}}");
    CHECK(s.u.conv2d_transpose.output_padding.set
          && s.u.conv2d_transpose.output_padding.value[0] == 1
          && s.u.conv2d_transpose.output_padding.value[1] == 0);
    JSON_FAILS("{\"class_name\": \"Conv2DTranspose\", \"config\": {\"name\": \"ct\","
               " \"filters\": 3, \"kernel_size\": 3, \"output_padding\": [1, -1]}}",
               "layers[1] 'ct' (Conv2DTranspose): output_padding: expected null, an integer or"
               " a list of 2 integers, each >= 0, got [1,-1]");
    JSON_FAILS("{\"class_name\": \"Conv2DTranspose\", \"config\": {\"name\": \"ct\","
               " \"filters\": 3, \"kernel_size\": 3, \"strides\": 2, \"output_padding\": 2}}",
               "ct (Conv2DTranspose): output_padding must be >= 0 and less than the strides");
    s = spec_of("{\"class_name\": \"Cropping2D\", \"config\": {\"name\": \"c\", \"cropping\":"
                " [[0, 0], [0, 0]], \"data_format\": \"channels_last\"}}");
    CHECK(s.kind == CNN_LAYER_CROPPING2D && !s.u.cropping2d.cropping[0]
          && !s.u.cropping2d.cropping[3]);
    s = spec_of("{\"class_name\": \"UpSampling2D\", \"config\": {\"name\": \"up\", \"size\":"
                " [2, 3], \"interpolation\": \"bilinear\"}}");
    CHECK(s.u.up_sampling2d.interpolation == CNN_INTERPOLATION_BILINEAR
          && s.u.up_sampling2d.size[1] == 3);
    JSON_FAILS("{\"class_name\": \"UpSampling2D\", \"config\": {\"name\": \"up\","
               " \"interpolation\": \"bicubic\"}}",
               "layers[1] 'up' (UpSampling2D): interpolation: expected one of: nearest"
               " bilinear; got \"bicubic\"");
    s = spec_of("{\"class_name\": \"SpatialDropout2D\", \"config\": {\"name\": \"sd\", \"rate\":"
                " 0.3, \"noise_shape\": null, \"seed\": 5}}");
    CHECK(s.u.spatial_dropout2d.rate == 0.3f && s.u.spatial_dropout2d.seed == 5);
}

static void test_text(void)
{
    const char ok[] = "input shape=8,8,2\n"
                      "Conv2DTranspose 4 3 2 same None\n"
                      "Convolution2DTranspose 2 (2, 3) (1, 2) valid (0, 1)\n"
                      "Cropping2D ((1, 0), (2, 3))\n"
                      "UpSampling2D 2 interpolation='bilinear'\n"
                      "SpatialDropout2D 0.5\n"
                      "LayerNormalization center=False\n"
                      "Softmax\n";
    cnn_model *m = NULL;
    CHECK_OK(cnn_model_from_description_memory(ok, sizeof ok - 1, "t.model", &m));
    /* 8 -> 16 (same, s2); -> (15 + 2 = 17, 2 * 15 + 3 + 1 = 34); cropped to
     * (16, 29); x2 */
    cnn_shape o = m ? cnn_model_output_shape(m) : (cnn_shape){0};
    CHECK(o.dims[0] == 32 && o.dims[1] == 58 && o.dims[2] == 2);
    cnn_model_free(m);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"input shape=8,8,2\nUpSampling2D interpolation=area\n",
         "t.model:2:28: UpSampling2D interpolation: expected one of: nearest bilinear; got"
         " 'area'"},
        {"input shape=8,8,2\nCropping2D ((4, 4), (0, 0))\n",
         "cropping ((4, 4), (0, 0)) leaves nothing of the input 8 x 8"},
        {"input shape=8,8,2\nConv2DTranspose 2 3 output_padding=(0,-1)\n",
         "output_padding"},
        {"input shape=8\nSpatialDropout2D 0.5\n",
         "spatial_dropout2d (SpatialDropout2D): expects input of rank 3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = NULL;
        cnn_status st =
            cnn_model_from_description_memory(bad[i].text, strlen(bad[i].text), "t.model", &m);
        CHECK(st != CNN_OK && m == NULL);
        if (!strstr(cnn_last_error(), bad[i].want))
            fprintf(stderr, "case %zu: %s\n", i, cnn_last_error());
        CHECK(strstr(cnn_last_error(), bad[i].want) != NULL);
        cnn_model_free(m);
    }
}

int main(void)
{
    test_json();
    test_text();
    return test_finish("test_description_new_kinds");
}
