/* summary(): the classic Keras (TensorFlow 2.x) table, column for column:
 * line length 65, columns ending at 29, 55 and 65, each field cut to its
 * column with its last character turned into the separating space. A
 * graph gets Keras's Functional table: line length 98, columns ending at
 * 32, 53, 65 and 98, the InputLayer first, and a Connected to column
 * listing each input as name[0][0], one per row. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/model.h"

#define LINE_LENGTH 65
#define GRAPH_LINE_LENGTH 98
static const int column_end[3] = {29, 55, 65};
static const int graph_column_end[4] = {32, 53, 65, 98};

typedef struct {
    char *text;
    size_t len, cap;
    bool failed;
} text_buf;

static void append(text_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->text, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->text = grown;
        b->cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
}

static void append_line_of(text_buf *b, char c, int length)
{
    char line[GRAPH_LINE_LENGTH + 1];
    memset(line, c, (size_t)length);
    line[length] = '\n';
    append(b, line, (size_t)length + 1);
}

static void append_line(text_buf *b, char c) { append_line_of(b, c, LINE_LENGTH); }

/* Keras's print_row over n columns ending at ends[]. */
static void append_row_of(text_buf *b, const char *const *fields, const int *ends, int n_fields)
{
    char line[GRAPH_LINE_LENGTH + 2];
    size_t len = 0;
    for (int i = 0; i < n_fields; i++) {
        if (i > 0)
            line[len - 1] = ' ';
        size_t end = (size_t)ends[i], n = strlen(fields[i]);
        if (len + n > end)
            n = end - len;
        memcpy(line + len, fields[i], n);
        len += n;
        while (len < end)
            line[len++] = ' ';
    }
    line[len++] = '\n';
    append(b, line, len);
}

static void append_row(text_buf *b, const char *fields[3]) { append_row_of(b, fields, column_end, 3); }

/* A name as it may be shown on a terminal: control characters (C0, DEL,
 * and C1 whether a raw byte or UTF-8) and bytes that are not UTF-8 become
 * \t, \n, \r or \xHH, so a crafted layer name cannot move the cursor,
 * clear the screen or retitle the terminal. Valid UTF-8 stays as it is. */
static void escape_name(const char *name, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t o = 0;
    while (*s && o + 5 < cap) {
        unsigned c = *s;
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                               : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        for (size_t k = 1; k < len; k++)
            if ((s[k] & 0xC0) != 0x80)
                len = 0;
        bool c1 = len == 2 && c == 0xC2 && s[1] < 0xA0;
        if (len == 1 && c >= 0x20 && c != 0x7F) {
            out[o++] = (char)c;
        } else if (len > 1 && !c1) {
            memcpy(out + o, s, len);
            o += len;
            s += len;
            continue;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            out[o++] = '\\';
            out[o++] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        }
        s++;
    }
    out[o] = '\0';
}

/* 1234567 -> "1,234,567" */
static void with_commas(int64_t v, char *out, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0 && digits[0] != '-')
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* Keras's Functional table: the InputLayer, then each layer with the
 * layers it reads. */
static void graph_rows(text_buf *b, const cnn_model *m)
{
    const char *model_line = "Model: \"model\"\n";
    append(b, model_line, strlen(model_line));
    append_line_of(b, '_', GRAPH_LINE_LENGTH);
    append_row_of(b, (const char *[4]){"Layer (type)", "Output Shape", "Param #", "Connected to"},
                  graph_column_end, 4);
    append_line_of(b, '=', GRAPH_LINE_LENGTH);
    char name[4 * CNN_LAYER_NAME_MAX + 40], shape[96], in_shape[100], params[32],
        link[4 * CNN_LAYER_NAME_MAX + 16], shown[4 * CNN_LAYER_NAME_MAX + 8];
    escape_name(cnn_model_input_name(m), shown, sizeof shown);
    snprintf(name, sizeof name, "%s (InputLayer)", shown);
    cnn_shape_format(m->input_shape, shape, sizeof shape);
    snprintf(in_shape, sizeof in_shape, "[%s]", shape); /* Keras lists an input's shapes */
    append_row_of(b, (const char *[4]){name, in_shape, "0", ""}, graph_column_end, 4);
    for (int i = 0; i < m->n_layers; i++) {
        append_line_of(b, '_', GRAPH_LINE_LENGTH);
        const cnn_layer *l = m->layers[i];
        escape_name(l->name, shown, sizeof shown);
        snprintf(name, sizeof name, "%s (%s)", shown, l->ops->type_name);
        cnn_shape_format(l->out, shape, sizeof shape);
        snprintf(params, sizeof params, "%lld", (long long)cnn_model_layer_param_count(m, i));
        for (int k = 0; k < l->n_inputs; k++) {
            int p = l->inputs[k];
            escape_name(p < 0 ? cnn_model_input_name(m) : m->layers[p]->name, shown, sizeof shown);
            snprintf(link, sizeof link, "%s[0][0]", shown);
            append_row_of(b, k ? (const char *[4]){"", "", "", link}
                               : (const char *[4]){name, shape, params, link},
                          graph_column_end, 4);
        }
    }
    append_line_of(b, '=', GRAPH_LINE_LENGTH);
}

cnn_status cnn_model_summary(const cnn_model *m, char **text_out)
{
    if (!m || !text_out)
        return cnn_fail(CNN_ERR_INVALID_ARGUMENT, "summary: model and text_out are required");
    *text_out = NULL;
    text_buf b = {0};
    const bool graph = cnn_model_is_functional(m);
    if (graph)
        graph_rows(&b, m);
    const char *model_line = "Model: \"sequential\"\n";
    if (!graph) {
        append(&b, model_line, strlen(model_line));
        append_line(&b, '_');
        append_row(&b, (const char *[3]){"Layer (type)", "Output Shape", "Param #"});
        append_line(&b, '=');
    }
    for (int i = 0; !graph && i < m->n_layers; i++) {
        const cnn_layer *l = m->layers[i];
        char name[4 * CNN_LAYER_NAME_MAX + 40], shape[96], params[32],
            shown[4 * CNN_LAYER_NAME_MAX + 8];
        escape_name(l->name, shown, sizeof shown);
        snprintf(name, sizeof name, "%s (%s)", shown, l->ops->type_name);
        cnn_shape_format(l->out, shape, sizeof shape);
        snprintf(params, sizeof params, "%lld", (long long)cnn_model_layer_param_count(m, i));
        append_row(&b, (const char *[3]){name, shape, params});
        append_line(&b, i + 1 < m->n_layers ? '_' : '=');
    }
    if (m->n_layers == 0)
        append_line(&b, '=');
    char total[32], trainable[32], frozen[32], line[128];
    int64_t all = cnn_model_param_count(m), train = cnn_model_trainable_param_count(m);
    with_commas(all, total, sizeof total);
    with_commas(train, trainable, sizeof trainable);
    with_commas(all - train, frozen, sizeof frozen);
    int n = snprintf(line, sizeof line,
                     "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", total,
                     trainable, frozen);
    append(&b, line, (size_t)n);
    append_line_of(&b, '_', graph ? GRAPH_LINE_LENGTH : LINE_LENGTH);
    if (b.failed) {
        free(b.text);
        return cnn_fail(CNN_ERR_NO_MEMORY, "summary: out of memory");
    }
    *text_out = b.text;
    return CNN_OK;
}

cnn_status cnn_model_print_summary(const cnn_model *m, FILE *stream)
{
    char *text;
    cnn_status st = cnn_model_summary(m, &text);
    if (st)
        return st;
    int ok = fputs(text, stream ? stream : stdout) >= 0;
    free(text);
    return ok ? CNN_OK : cnn_fail(CNN_ERR_IO, "summary: cannot write to the stream");
}
