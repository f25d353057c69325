/* The hand-written description format: one layer per line, Keras class
 * names and arguments (docs/DESCRIPTION_FORMAT.md):
 *
 *   input shape=28,28,1               # first: (rows, cols, channels) or N
 *   Conv2D 32 5 padding=same activation=relu
 *   MaxPooling2D pool_size=2
 *   Flatten
 *   Dense units=10 activation=softmax
 *
 * Each line is read, checked and added to the model before the next, so
 * an error names the first wrong thing as file:line:column. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/description.h"
#include "kernels/activation.h"

#define NAME_BYTES 256

typedef struct {
    const char *name;       /* file name for messages */
    int line;               /* 1-based */
    const char *line_start;
    const cnn_layer_ops *kind; /* of the line being read */
    cnn_model *model;       /* created by the input line */
    int input_line;
    char layer_name[NAME_BYTES]; /* the current line's name=, NUL-terminated */
    /* the current line's inputs=: names into input_text, and where it was */
    char input_text[NAME_BYTES * 2];
    const char *inputs[CNN_MAX_LAYER_INPUTS];
    int n_inputs;
    const char *inputs_at;
} text_parser;

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int column(const text_parser *p, const char *at) { return (int)(at - p->line_start) + 1; }

/* Quoted pieces of the text in messages are cut to this many bytes. */
#define SHOW(s, n) (int)((n) > 40 ? 40 : (n)), (s)

static cnn_status fail_at(const text_parser *p, const char *at, cnn_status status,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static cnn_status fail_at(const text_parser *p, const char *at, cnn_status status,
                          const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnn_fail(status, "%s:%d:%d: %s", p->name, p->line, column(p, at), msg);
}

/* ---- Values ----------------------------------------------------------------- */

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
}

/* Drops one pair of matching quotes ("relu" or 'relu'). */
static void unquote(const char **s, size_t *n)
{
    if (*n >= 2 && (**s == '"' || **s == '\'') && (*s)[*n - 1] == **s) {
        (*s)++;
        *n -= 2;
    }
}

/* An integer in [min, max]: optional sign and decimal digits only. */
static cnn_status parse_int(const text_parser *p, const char *key, const char *s, size_t n,
                            long long min, long long max, long long *out)
{
    const char *what = p->kind->type_name;
    size_t i = n && (s[0] == '-' || s[0] == '+');
    if (i == n)
        return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected an integer, got '%.*s'", what, key,
                       SHOW(s, n));
    for (size_t j = i; j < n; j++)
        if (s[j] < '0' || s[j] > '9')
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected an integer, got '%.*s'", what,
                           key, SHOW(s, n));
    long long v = 0;
    bool huge = false;
    for (size_t j = i; j < n; j++) {
        if (v > (LLONG_MAX - 9) / 10) {
            huge = true;
            break;
        }
        v = v * 10 + (s[j] - '0');
    }
    if (s[0] == '-')
        v = -v;
    if (huge || v > max)
        return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: %.*s is out of range (at most %lld)", what,
                       key, SHOW(s, n), max);
    if (v < min)
        return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: must be >= %lld, got %lld", what, key, min,
                       v);
    *out = v;
    return CNN_OK;
}

/* 1..max comma-separated integers >= min, optionally in () or []:
 * "5", "5,3", "(5, 3)". */
static cnn_status parse_ints(const text_parser *p, const char *key, const char *s, size_t n,
                             int max, int min, int *ints, int *count)
{
    if (n >= 2 && ((s[0] == '(' && s[n - 1] == ')') || (s[0] == '[' && s[n - 1] == ']'))) {
        s++;
        n -= 2;
    }
    *count = 0;
    const char *end = s + n;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        const char *item = s;
        size_t len = (size_t)(item_end - s);
        trim(&item, &len);
        if (*count == max)
            return fail_at(p, item, CNN_ERR_FORMAT, "%s %s: expected at most %d integers, got more",
                           p->kind->type_name, key, max);
        long long v;
        cnn_status st = parse_int(p, key, item, len, min, INT_MAX, &v);
        if (st)
            return st;
        ints[(*count)++] = (int)v;
        if (!comma)
            break;
        s = comma + 1;
    }
    return CNN_OK;
}

/* Integers >= 0 separated by commas, blanks and brackets, at most max:
 * "1", "1,2", "((1, 2), (3, 4))". */
static cnn_status parse_nested_ints(const text_parser *p, const char *key, const char *s,
                                    size_t n, int max, int *ints, int *count)
{
    const char *end = s + n;
    *count = 0;
    while (s < end) {
        if (*s == ',' || *s == '(' || *s == ')' || *s == '[' || *s == ']' || is_space(*s)) {
            s++;
            continue;
        }
        const char *item = s;
        while (s < end && !(*s == ',' || *s == '(' || *s == ')' || *s == '[' || *s == ']'
                            || is_space(*s)))
            s++;
        if (*count == max)
            return fail_at(p, item, CNN_ERR_FORMAT, "%s %s: expected at most %d integers, got more",
                           p->kind->type_name, key, max);
        long long v;
        cnn_status st = parse_int(p, key, item, (size_t)(s - item), 0, INT_MAX, &v);
        if (st)
            return st;
        ints[(*count)++] = (int)v;
    }
    return CNN_OK;
}

/* A finite number in s[0..n), checked for the argument's type. */
static cnn_status parse_real(const text_parser *p, const cnn_layer_field *a, const char *s,
                             size_t n, double *out)
{
    const char *what = p->kind->type_name, *key = a->key;
    char buf[64], *end;
    if (n == 0 || n >= sizeof buf || is_space(s[0]))
        return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected a number, got '%.*s'", what, key,
                       SHOW(s, n));
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + n)
        return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected a number, got '%.*s'", what, key,
                       SHOW(s, n));
    if (!isfinite(v))
        return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected a finite number, got '%.*s'", what,
                       key, SHOW(s, n));
    const char *problem = cnn_desc_real_problem(a->type, v);
    if (problem)
        return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: %s, got %.*s", what, key, problem,
                       SHOW(s, n));
    *out = v;
    return CNN_OK;
}

/* Reads the value of argument a from s[0..n) into out. */
static cnn_status parse_value(text_parser *p, const cnn_layer_field *a, const char *s, size_t n,
                              cnn_desc_value *out)
{
    const char *what = p->kind->type_name, *key = a->key;
    cnn_status st;
    memset(out, 0, sizeof *out);
    switch (a->type) {
    case CNN_FIELD_COUNT: {
        long long v;
        if ((st = parse_int(p, key, s, n, 1, INT_MAX, &v)))
            return st;
        out->ints[0] = (int)v;
        return CNN_OK;
    }
    case CNN_FIELD_AXIS: {
        long long v;
        if ((st = parse_int(p, key, s, n, -CNN_MAX_RANK, CNN_MAX_RANK, &v)))
            return st;
        out->ints[0] = (int)v;
        return CNN_OK;
    }
    case CNN_FIELD_PAIR:
        if ((st = parse_ints(p, key, s, n, 2, 1, out->ints, &out->n_ints)))
            return st;
        if (out->n_ints == 1)
            out->ints[1] = out->ints[0];
        return CNN_OK;
    case CNN_FIELD_SHAPE:
        if ((st = parse_ints(p, key, s, n, 3, 1, out->ints, &out->n_ints)))
            return st;
        if (out->n_ints == 2)
            return fail_at(p, s, CNN_ERR_FORMAT,
                           "input shape: expected rows,cols,channels (e.g. 28,28,1) or a number"
                           " of features, got 2 values '%.*s'",
                           SHOW(s, n));
        return CNN_OK;
    case CNN_FIELD_PADDING:
        unquote(&s, &n);
        if ((out->choice = cnn_desc_padding_from_name(s, n)) < 0)
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected valid or same, got '%.*s'", what,
                           key, SHOW(s, n));
        return CNN_OK;
    case CNN_FIELD_ACTIVATION:
        unquote(&s, &n);
        if ((out->choice = cnn_activation_lookup(s, n)) < 0) {
            const char *near = cnn_desc_suggest_activation(s, n);
            char list[400];
            cnn_activation_list(list, sizeof list);
            return fail_at(p, s, CNN_ERR_FORMAT,
                           "%s %s: expected an activation (%s), got '%.*s'%s%s%s", what, key, list,
                           SHOW(s, n), near ? " (did you mean '" : "", near ? near : "",
                           near ? "'?)" : "");
        }
        return CNN_OK;
    case CNN_FIELD_USE_BIAS:
        if ((n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4))))
            out->flag = true;
        else if (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5)))
            out->flag = false;
        else
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected true or false, got '%.*s'",
                           what, key, SHOW(s, n));
        return CNN_OK;
    case CNN_FIELD_RATE:
    case CNN_FIELD_REAL:
    case CNN_FIELD_NONNEGATIVE:
        return parse_real(p, a, s, n, &out->real);
    case CNN_FIELD_POSITIVE:
        if (n == 4 && !memcmp(s, "None", 4))
            return CNN_OK; /* Keras None: the default */
        return parse_real(p, a, s, n, &out->real);
    case CNN_FIELD_L2:
        /* l2(x), L2(x) (Keras's regularizers.l2), or the factor alone */
        if (n > 4 && (s[0] == 'l' || s[0] == 'L') && s[1] == '2' && s[2] == '('
            && s[n - 1] == ')') {
            s += 3;
            n -= 4;
        }
        return parse_real(p, a, s, n, &out->real);
    case CNN_FIELD_OPT_PAIR:
        if (n == 4 && !memcmp(s, "None", 4))
            return CNN_OK; /* Keras None: computed */
        if ((st = parse_ints(p, key, s, n, 2, 0, out->ints, &out->n_ints)))
            return st;
        if (out->n_ints == 1)
            out->ints[1] = out->ints[0];
        out->flag = true;
        return CNN_OK;
    case CNN_FIELD_CHOICE:
        unquote(&s, &n);
        if ((out->choice = cnn_layer_choice_index(p->kind, s, n)) < 0)
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected one of: %s; got '%.*s'", what,
                           key, p->kind->choices, SHOW(s, n));
        return CNN_OK;
    case CNN_FIELD_PADDING4:
    case CNN_FIELD_CROPPING4: {
        int ints[4], count;
        const char *problem;
        if ((st = parse_nested_ints(p, key, s, n, 4, ints, &count)))
            return st;
        if ((problem = cnn_desc_padding4(out, ints, count, a->type == CNN_FIELD_CROPPING4)))
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected %s, got '%.*s'", what, key,
                           problem, SHOW(s, n));
        return CNN_OK;
    }
    case CNN_FIELD_TARGET_SHAPE: {
        int ints[3], count;
        const char *problem;
        if ((st = parse_ints(p, key, s, n, 3, -1, ints, &count)))
            return st;
        if ((problem = cnn_desc_target_shape(out, ints, count)))
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected %s, got '%.*s'", what, key,
                           problem, SHOW(s, n));
        return CNN_OK;
    }
    case CNN_FIELD_SEED: {
        if (n == 4 && !memcmp(s, "None", 4))
            return CNN_OK; /* Keras seed=None: derived from the model's seed */
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return fail_at(p, s, CNN_ERR_FORMAT,
                               "%s %s: expected an integer >= 0, got '%.*s'", what, key,
                               SHOW(s, n));
            if (v > (UINT64_MAX - 9) / 10)
                return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: %.*s is out of range (64 bits)",
                               what, key, SHOW(s, n));
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (n == 0)
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected an integer >= 0", what, key);
        out->seed = v;
        return CNN_OK;
    }
    case CNN_FIELD_NAME:
        unquote(&s, &n);
        if (n == 0 || n >= sizeof p->layer_name)
            return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected 1 to %zu bytes, got %zu", what,
                           key, sizeof p->layer_name - 1, n);
        memcpy(p->layer_name, s, n);
        p->layer_name[n] = '\0';
        out->text = p->layer_name;
        return CNN_OK;
    }
    return CNN_OK;
}

/* ---- Lines -------------------------------------------------------------------- */

/* The extent of the value starting at *sp: a bracketed "(5, 3)", a quoted
 * string, or a run of non-blank text where a trailing comma continues over
 * blanks ("5, 3"). It must be followed by a blank or the end. */
static cnn_status scan_value(const text_parser *p, const char **sp, const char *end,
                             size_t *len)
{
    const char *s = *sp, *start = s;
    if (*s == '(' || *s == '[') {
        /* to the matching bracket: "((1, 2), (3, 4))" */
        int depth = 0;
        for (; s < end; s++) {
            depth += *s == '(' || *s == '[';
            depth -= *s == ')' || *s == ']';
            if (depth == 0)
                break;
        }
        if (s == end)
            return fail_at(p, start, CNN_ERR_FORMAT, "unclosed '%c': expected '%c' before the"
                           " end of the line", *start, *start == '(' ? ')' : ']');
        s++;
    } else if (*s == '"' || *s == '\'') {
        const char *c = memchr(s + 1, *s, (size_t)(end - s - 1));
        if (!c)
            return fail_at(p, s, CNN_ERR_FORMAT, "unclosed '%c': expected '%c' before the end of"
                           " the line", *s, *s);
        s = c + 1;
    } else {
        for (;;) {
            while (s < end && !is_space(*s))
                s++;
            if (s[-1] != ',')
                break;
            const char *t = s;
            while (t < end && is_space(*t))
                t++;
            if (t == end)
                break;
            s = t;
        }
    }
    if (s < end && !is_space(*s))
        return fail_at(p, s, CNN_ERR_FORMAT, "expected a blank after '%.*s', got '%c'",
                       SHOW(start, (size_t)(s - start)), *s);
    *len = (size_t)(s - start);
    *sp = s;
    return CNN_OK;
}

static cnn_status positional_error(const text_parser *p, const char *v, size_t n)
{
    const cnn_layer_ops *k = p->kind;
    char list[256] = "";
    int count = 0;
    for (int i = 0; i < k->n_fields && (k->fields[i].flags & CNN_FIELD_POSITIONAL); i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", count ? ", " : "", k->fields[i].key);
        count++;
    }
    if (count == 0) {
        cnn_desc_keys(k, list, sizeof list);
        return fail_at(p, v, CNN_ERR_FORMAT,
                       "%s takes no positional values, got '%.*s'; write arguments as key=value"
                       " (%s accepts %s)",
                       k->type_name, SHOW(v, n), k->type_name, list);
    }
    return fail_at(p, v, CNN_ERR_FORMAT,
                   "%s takes at most %d positional value%s (%s), got '%.*s' too; write other"
                   " arguments as key=value",
                   k->type_name, count, count == 1 ? "" : "s", list, SHOW(v, n));
}

/* inputs=a,b or inputs=(a, b): the layers (or the input) the line's layer
 * reads, by name. */
static cnn_status parse_inputs(text_parser *p, const char *key, const char *s, size_t n)
{
    if (p->inputs_at)
        return fail_at(p, key, CNN_ERR_FORMAT, "%s inputs: given twice (first at column %d)",
                       p->kind->type_name, column(p, p->inputs_at));
    p->inputs_at = key;
    if (n >= 2 && ((s[0] == '(' && s[n - 1] == ')') || (s[0] == '[' && s[n - 1] == ']'))) {
        s++;
        n -= 2;
    }
    size_t used = 0;
    const char *end = s + n;
    while (s <= end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item = s;
        size_t len = (size_t)((comma ? comma : end) - s);
        trim(&item, &len);
        unquote(&item, &len);
        if (len == 0 || len >= CNN_LAYER_NAME_MAX)
            return fail_at(p, item, CNN_ERR_FORMAT,
                           "%s inputs: expected layer names (1 to %d bytes) separated by commas",
                           p->kind->type_name, CNN_LAYER_NAME_MAX - 1);
        if (p->n_inputs == CNN_MAX_LAYER_INPUTS || used + len + 1 > sizeof p->input_text)
            return fail_at(p, item, CNN_ERR_FORMAT, "%s inputs: more than %d names",
                           p->kind->type_name, CNN_MAX_LAYER_INPUTS);
        memcpy(p->input_text + used, item, len);
        p->input_text[used + len] = '\0';
        p->inputs[p->n_inputs++] = p->input_text + used;
        used += len + 1;
        if (!comma)
            break;
        s = comma + 1;
    }
    return CNN_OK;
}

/* Reads the arguments after the layer word: positional values in the
 * kind's order, then key=value pairs. */
static cnn_status parse_args(text_parser *p, const char *s, const char *end,
                             cnn_desc_value values[], const char *given[])
{
    const cnn_layer_ops *k = p->kind;
    int n_positional = 0;
    bool keyword_seen = false;
    for (;;) {
        while (s < end && is_space(*s))
            s++;
        if (s == end)
            return CNN_OK;
        const char *token = s, *word_end = s;
        while (word_end < end && is_word(*word_end))
            word_end++;
        const char *eq = word_end;
        while (eq < end && is_space(*eq))
            eq++;
        int index = -1;
        if (eq < end && *eq == '=') {
            if (word_end == token)
                return fail_at(p, token, CNN_ERR_FORMAT,
                               "expected an argument name before '='");
            size_t klen = (size_t)(word_end - token);
            index = cnn_desc_arg_find(k, token, klen);
            if (index < 0 && klen == 6 && !memcmp(token, "inputs", 6) && k != &cnn_desc_input) {
                s = eq + 1;
                while (s < end && is_space(*s))
                    s++;
                const char *value = s;
                size_t vlen = 0;
                cnn_status st = s == end ? fail_at(p, s, CNN_ERR_FORMAT,
                                                   "%s inputs: expected layer names after '='",
                                                   k->type_name)
                                         : scan_value(p, &s, end, &vlen);
                if (st || (st = parse_inputs(p, token, value, vlen)))
                    return st;
                keyword_seen = true;
                continue;
            }
            if (index < 0) {
                char keys[256];
                cnn_desc_keys(k, keys, sizeof keys);
                const char *near = cnn_desc_suggest_key(k, token, klen);
                return fail_at(p, token, CNN_ERR_FORMAT,
                               "%s has no argument '%.*s'%s%s%s; its arguments are %s",
                               k->type_name, SHOW(token, klen), near ? " (did you mean '" : "",
                               near ? near : "", near ? "'?)" : "", keys);
            }
            keyword_seen = true;
            s = eq + 1;
            while (s < end && is_space(*s))
                s++;
            if (s == end)
                return fail_at(p, s, CNN_ERR_FORMAT, "%s %s: expected a value after '='",
                               k->type_name, k->fields[index].key);
        }
        const char *value = s;
        size_t vlen = 0;
        cnn_status st = scan_value(p, &s, end, &vlen);
        if (st)
            return st;
        if (index < 0) {
            if (keyword_seen)
                return fail_at(p, token, CNN_ERR_FORMAT,
                               "%s: positional value '%.*s' after key=value arguments; write it"
                               " as key=value",
                               k->type_name, SHOW(value, vlen));
            if (n_positional >= k->n_fields
                || !(k->fields[n_positional].flags & CNN_FIELD_POSITIONAL))
                return positional_error(p, value, vlen);
            index = n_positional++;
        }
        if (given[index])
            return fail_at(p, token, CNN_ERR_FORMAT, "%s %s: given twice (first at column %d)",
                           k->type_name, k->fields[index].key, column(p, given[index]));
        given[index] = token;
        if ((st = parse_value(p, &k->fields[index], value, vlen, &values[index])))
            return st;
    }
}

static const char *example_value(cnn_field_type t)
{
    switch (t) {
    case CNN_FIELD_COUNT: return "32";
    case CNN_FIELD_PAIR: return "3";
    case CNN_FIELD_PADDING: return "same";
    case CNN_FIELD_ACTIVATION: return "relu";
    case CNN_FIELD_USE_BIAS: return "false";
    case CNN_FIELD_RATE: return "0.5";
    case CNN_FIELD_SEED: return "1";
    case CNN_FIELD_NAME: return "my_layer";
    case CNN_FIELD_SHAPE: return "28,28,1";
    case CNN_FIELD_REAL:
    case CNN_FIELD_POSITIVE:
    case CNN_FIELD_NONNEGATIVE: return "0.1";
    case CNN_FIELD_L2: return "l2(0.0005)";
    case CNN_FIELD_PADDING4:
    case CNN_FIELD_CROPPING4: return "1";
    case CNN_FIELD_OPT_PAIR: return "1";
    case CNN_FIELD_CHOICE: return "bilinear";
    case CNN_FIELD_TARGET_SHAPE: return "7,7,64";
    case CNN_FIELD_AXIS: return "-1";
    }
    return "...";
}

#define INPUT_HINT "'input shape=H,W,C' (or 'input shape=N' for flat input)"

static bool is_input_word(const char *w, size_t n)
{
    return (n == 5 && (!memcmp(w, "input", 5) || !memcmp(w, "Input", 5)))
        || (n == 10 && !memcmp(w, "InputLayer", 10));
}

/* One non-blank line s[0..end) without its comment. */
static cnn_status parse_line(text_parser *p, const char *s, const char *end)
{
    const char *word = s;
    while (s < end && is_word(*s))
        s++;
    size_t wlen = (size_t)(s - word);
    if (wlen == 0)
        return fail_at(p, word, CNN_ERR_FORMAT,
                       "expected a layer name (such as Conv2D) or " INPUT_HINT ", got '%c'",
                       *word);
    if (s < end && !is_space(*s))
        return fail_at(p, s, CNN_ERR_FORMAT,
                       "expected a blank after '%.*s', got '%c' (arguments are written"
                       " key=value, separated by blanks)",
                       SHOW(word, wlen), *s);
    bool input = is_input_word(word, wlen);
    char names[768];
    if (input) {
        p->kind = &cnn_desc_input;
        if (p->model)
            return fail_at(p, word, CNN_ERR_FORMAT, "input given twice (first on line %d)",
                           p->input_line);
    } else {
        cnn_layer_kind kind = cnn_desc_kind_from_name(word, wlen);
        p->kind = kind ? cnn_desc_kind_find(kind) : NULL;
        if (kind && !p->kind)
            return fail_at(p, word, CNN_ERR_FORMAT,
                           "layer %.*s cannot be written in a description yet; known layers: %s",
                           SHOW(word, wlen), cnn_desc_layer_names(names, sizeof names));
        if (!p->kind) {
            const char *near = cnn_desc_suggest_layer(word, wlen);
            return fail_at(p, word, CNN_ERR_FORMAT, "unknown layer '%.*s'%s%s%s; known layers: %s",
                           SHOW(word, wlen), near ? " (did you mean '" : "", near ? near : "",
                           near ? "'?)" : "", cnn_desc_layer_names(names, sizeof names));
        }
        if (!p->model)
            return fail_at(p, word, CNN_ERR_FORMAT,
                           "expected " INPUT_HINT " before the first layer, got '%.*s'",
                           SHOW(word, wlen));
    }
    const cnn_layer_ops *k = p->kind;
    cnn_desc_value values[CNN_DESC_MAX_ARGS];
    const char *given[CNN_DESC_MAX_ARGS] = {0};
    p->n_inputs = 0;
    p->inputs_at = NULL;
    cnn_status st = parse_args(p, s, end, values, given);
    if (st)
        return st;
    for (int i = 0; i < k->n_fields; i++)
        if ((k->fields[i].flags & CNN_FIELD_REQUIRED) && !given[i])
            return fail_at(p, word, CNN_ERR_FORMAT,
                           "%s: missing required argument %s (e.g. %s=%s)", k->type_name,
                           k->fields[i].key, k->fields[i].key, example_value(k->fields[i].type));
    if (input) {
        if ((st = cnn_desc_create(&p->model, cnn_desc_shape(&values[0])))) {
            cnn_error_prefix("%s:%d:%d", p->name, p->line, column(p, given[0]));
            return st;
        }
        if (given[1] && cnn_model_set_input_name(p->model, values[1].text))
            return fail_at(p, given[1], CNN_ERR_FORMAT, "input name: %s", cnn_last_error());
        p->input_line = p->line;
        return CNN_OK;
    }
    cnn_layer_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.kind = k->kind;
    for (int i = 0; i < k->n_fields; i++)
        if (given[i])
            cnn_desc_store(&spec, &k->fields[i], &values[i]);
    if (p->n_inputs && cnn_model_set_next_inputs(p->model, p->n_inputs, p->inputs))
        return fail_at(p, p->inputs_at, CNN_ERR_FORMAT, "%s inputs: %s", k->type_name,
                       cnn_last_error());
    if ((st = cnn_desc_add(p->model, &spec)))
        cnn_error_prefix("%s:%d:%d", p->name, p->line, column(p, word));
    return st;
}

/* The end of the line's content: before a '#' outside quotes, without
 * trailing blanks. */
static const char *content_end(const char *s, const char *end)
{
    char quote = 0;
    const char *e = s;
    for (; e < end; e++) {
        if (quote) {
            if (*e == quote)
                quote = 0;
        } else if (*e == '"' || *e == '\'') {
            quote = *e;
        } else if (*e == '#') {
            break;
        }
    }
    while (e > s && is_space(e[-1]))
        e--;
    return e;
}

cnn_status cnn_desc_parse_text(const char *text, size_t size, const char *name, cnn_model **out)
{
    text_parser p = {.name = name};
    const char *s = text, *end = text + size;
    if (size >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    const char *nul = memchr(text, '\0', size);
    cnn_status st = CNN_OK;
    while (!st) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *line_end = nl ? nl : end;
        p.line++;
        p.line_start = s;
        if (nul && nul < line_end) {
            st = fail_at(&p, nul, CNN_ERR_FORMAT, "unexpected NUL byte: a description is text");
            break;
        }
        const char *c = s;
        while (c < line_end && is_space(*c))
            c++;
        const char *ce = content_end(c, line_end);
        if (ce > c)
            st = parse_line(&p, c, ce);
        if (!nl)
            break;
        s = nl + 1;
    }
    if (!st && !p.model) {
        p.line = 1;
        p.line_start = text;
        st = fail_at(&p, text, CNN_ERR_FORMAT,
                     "empty description: expected " INPUT_HINT ", then one layer per line");
    } else if (!st && cnn_model_layer_count(p.model) == 0) {
        st = cnn_fail(CNN_ERR_FORMAT, "%s:%d: no layers after the input: expected one layer per"
                      " line (such as 'Dense units=10')", name, p.input_line);
    }
    if (st) {
        cnn_model_free(p.model);
        return st;
    }
    *out = p.model;
    return CNN_OK;
}
