/*
 * lpfleet-lab stand-in for NVIDIA's NVML library (libnvidia-ml.so.1).
 *
 * Lab hosts have no GPU. This library answers the NVML calls lpfleet and
 * pynvml make, with NVML's real C signatures and return codes, from a GPU
 * profile: the JSON file named by LPFLEET_LAB_GPU_PROFILE (default
 * /etc/lpfleet-lab/gpus.json). No profile file means no driver:
 * nvmlInit returns NVML_ERROR_DRIVER_NOT_LOADED.
 *
 * NVIDIA_VISIBLE_DEVICES and then CUDA_VISIBLE_DEVICES select GPUs by index
 * or UUID, as inside a container; the selected GPUs are renumbered from 0.
 *
 * C99 and libc only; the library is bind-mounted into containers whose libc
 * may be older than the build machine's, so it avoids strtol/sscanf (newer
 * glibc versions redirect them to versioned symbols).
 */
#define _POSIX_C_SOURCE 200809L /* open(O_CLOEXEC), ssize_t; not _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NVML_API __attribute__((visibility("default")))

#define DEFAULT_PROFILE_PATH "/etc/lpfleet-lab/gpus.json"
#define MAX_GPUS 64
#define MAX_PROFILE_BYTES (1024 * 1024)
#define MAX_JSON_DEPTH 32
#define TEXT_FIELD_SIZE 96
#define PCI_BUS_ID_SIZE 32
#define PCI_BUS_ID_LEGACY_SIZE 16
#define NVML_MEMORY_V2_VERSION 0x02000028u
#define NVIDIA_PCI_VENDOR_ID 0x10DEu

__attribute__((used)) static const char standin_ident[] =
    "lpfleet-lab stand-in libnvidia-ml.so.1 (NVML API 12)";

typedef enum nvmlReturn_enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_ALREADY_INITIALIZED = 5,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_INSUFFICIENT_POWER = 8,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_IRQ_ISSUE = 11,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_CORRUPTED_INFOROM = 14,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_OPERATING_SYSTEM = 17,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_IN_USE = 19,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_NO_DATA = 21,
    NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
    NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
    NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_DEPRECATED = 26,
    NVML_ERROR_NOT_READY = 27,
    NVML_ERROR_GPU_NOT_FOUND = 28,
    NVML_ERROR_INVALID_STATE = 29,
    NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

typedef enum nvmlTemperatureSensors_enum { NVML_TEMPERATURE_GPU = 0 } nvmlTemperatureSensors_t;

typedef struct nvmlMemory_st {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

/* nvmlDeviceGetPciInfo and _v2 fill this older layout. */
typedef struct nvmlPciInfo_v2_st {
    char busId[PCI_BUS_ID_LEGACY_SIZE];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    unsigned int reserved0;
    unsigned int reserved1;
    unsigned int reserved2;
    unsigned int reserved3;
} nvmlPciInfo_v2_t;

/* nvmlDeviceGetPciInfo_v3 fills the current layout (nvmlPciInfo_t). */
typedef struct nvmlPciInfo_st {
    char busIdLegacy[PCI_BUS_ID_LEGACY_SIZE];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[PCI_BUS_ID_SIZE];
} nvmlPciInfo_t;

typedef struct nvmlUtilization_st {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

struct nvmlDevice_st {
    unsigned int profile_index; /* index on the host: also the minor number */
    unsigned int visible_index; /* NVML index after device selection */
    char uuid[TEXT_FIELD_SIZE];
    char name[TEXT_FIELD_SIZE];
    char pci_bus_id[PCI_BUS_ID_SIZE];
    unsigned int pci_domain, pci_bus, pci_device, pci_function;
    unsigned long long memory_total_mib;
    unsigned long long memory_used_mib;
    unsigned int cc_major, cc_minor;
    unsigned int temperature_c;
    unsigned int power_draw_w;
    unsigned int power_limit_w;
    unsigned int utilization_gpu_pct;
    unsigned int utilization_memory_pct;
};
typedef struct nvmlDevice_st *nvmlDevice_t;

struct gpu_profile {
    char driver_version[TEXT_FIELD_SIZE];
    unsigned int cuda_major, cuda_minor;
    unsigned int gpu_count;
    struct nvmlDevice_st gpus[MAX_GPUS];
};

static struct gpu_profile g_profile;
static struct nvmlDevice_st g_visible[MAX_GPUS];
static unsigned int g_visible_count;
static unsigned int g_init_count;
static volatile char g_lock;

static void lock_state(void) {
    while (__atomic_test_and_set(&g_lock, __ATOMIC_ACQUIRE)) {
    }
}

static void unlock_state(void) { __atomic_clear(&g_lock, __ATOMIC_RELEASE); }

/* ------------------------------------------------------------------ */
/* Small parsing helpers                                               */
/* ------------------------------------------------------------------ */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

static int equals_ignore_case(const char *a, const char *b) {
    while (*a && *b) {
        if (lower_ascii(*a++) != lower_ascii(*b++)) return 0;
    }
    return *a == *b;
}

/* Parses "MAJOR.MINOR" (both decimal, at most 3 digits each). */
static int parse_major_minor(const char *text, unsigned int *major, unsigned int *minor) {
    unsigned int parts[2] = {0, 0};
    int part = 0, digits = 0;
    for (const char *c = text;; c++) {
        if (is_digit(*c) && digits < 3) {
            parts[part] = parts[part] * 10 + (unsigned int)(*c - '0');
            digits++;
        } else if (*c == '.' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
        } else if (*c == '\0' && part == 1 && digits > 0) {
            *major = parts[0];
            *minor = parts[1];
            return 1;
        } else {
            return 0;
        }
    }
}

/* Parses "DOMAIN:BUS:DEVICE.FUNCTION" in hexadecimal, e.g. 00000000:01:00.0. */
static int parse_pci_bus_id(const char *text, unsigned int fields[4]) {
    const char separators[4] = {':', ':', '.', '\0'};
    const int max_digits[4] = {8, 2, 2, 1};
    const char *c = text;
    for (int field = 0; field < 4; field++) {
        unsigned int value = 0;
        int digits = 0;
        while (hex_value(*c) >= 0 && digits < max_digits[field]) {
            value = value * 16 + (unsigned int)hex_value(*c++);
            digits++;
        }
        if (digits == 0 || *c != separators[field]) return 0;
        fields[field] = value;
        if (*c) c++;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* A small JSON reader for the GPU profile                             */
/* ------------------------------------------------------------------ */

struct json_reader {
    const char *text;
    size_t length;
    size_t pos;
    char error[160];
};

static int json_fail(struct json_reader *r, const char *message) {
    if (r->error[0] == '\0') {
        unsigned int line = 1, column = 1;
        for (size_t i = 0; i < r->pos && i < r->length; i++) {
            if (r->text[i] == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        snprintf(r->error, sizeof r->error, "line %u column %u: %s", line, column, message);
    }
    return 0;
}

static char json_peek(struct json_reader *r) { return r->pos < r->length ? r->text[r->pos] : '\0'; }

static void json_skip_space(struct json_reader *r) {
    while (r->pos < r->length) {
        char c = r->text[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        r->pos++;
    }
}

static int json_expect(struct json_reader *r, char expected, const char *message) {
    json_skip_space(r);
    if (json_peek(r) != expected) return json_fail(r, message);
    r->pos++;
    return 1;
}

/* Reads a string into out (NUL-terminated, ASCII escapes only); out may be NULL to skip it. */
static int json_string(struct json_reader *r, char *out, size_t capacity) {
    size_t used = 0;
    if (!json_expect(r, '"', "expected a string")) return 0;
    while (r->pos < r->length) {
        char c = r->text[r->pos++];
        if (c == '"') {
            if (out) out[used] = '\0';
            return 1;
        }
        if ((unsigned char)c < 0x20) return json_fail(r, "control character in string");
        if (c == '\\') {
            char e = json_peek(r);
            r->pos++;
            switch (e) {
                case '"': case '\\': case '/': c = e; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'u': {
                    unsigned int code = 0;
                    for (int i = 0; i < 4; i++) {
                        int h = hex_value(json_peek(r));
                        if (h < 0) return json_fail(r, "bad \\u escape in string");
                        code = code * 16 + (unsigned int)h;
                        r->pos++;
                    }
                    c = code < 0x80 ? (char)code : '?';
                    break;
                }
                default:
                    return json_fail(r, "bad escape in string");
            }
        }
        if (out) {
            if (used + 1 >= capacity) return json_fail(r, "string too long");
            out[used++] = c;
        }
    }
    return json_fail(r, "unterminated string");
}

/* Reads a non-negative integer that fits in 32 bits. */
static int json_uint(struct json_reader *r, unsigned long long *out) {
    unsigned long long value = 0;
    int digits = 0;
    json_skip_space(r);
    while (is_digit(json_peek(r))) {
        value = value * 10 + (unsigned long long)(json_peek(r) - '0');
        r->pos++;
        if (++digits > 10 || value > 0xFFFFFFFFull) return json_fail(r, "number too large");
    }
    if (digits == 0) return json_fail(r, "expected a non-negative integer");
    char next = json_peek(r);
    if (next == '.' || next == 'e' || next == 'E') return json_fail(r, "expected an integer, not a fraction");
    *out = value;
    return 1;
}

static int json_skip_value(struct json_reader *r, int depth);

static int json_skip_container(struct json_reader *r, int depth, char open, char close) {
    if (depth > MAX_JSON_DEPTH) return json_fail(r, "nesting too deep");
    r->pos++; /* the opening bracket */
    json_skip_space(r);
    if (json_peek(r) == close) {
        r->pos++;
        return 1;
    }
    for (;;) {
        if (open == '{') {
            if (!json_string(r, NULL, 0) || !json_expect(r, ':', "expected ':' after key")) return 0;
        }
        if (!json_skip_value(r, depth + 1)) return 0;
        json_skip_space(r);
        if (json_peek(r) == ',') {
            r->pos++;
            continue;
        }
        return json_expect(r, close, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int json_skip_literal(struct json_reader *r, const char *word) {
    size_t n = strlen(word);
    if (r->length - r->pos < n || strncmp(r->text + r->pos, word, n) != 0) return json_fail(r, "unexpected value");
    r->pos += n;
    return 1;
}

static int json_skip_number(struct json_reader *r) {
    size_t start = r->pos;
    if (json_peek(r) == '-') r->pos++;
    while (is_digit(json_peek(r)) || json_peek(r) == '.' || json_peek(r) == 'e' || json_peek(r) == 'E' ||
           json_peek(r) == '+' || json_peek(r) == '-') {
        r->pos++;
    }
    return r->pos > start ? 1 : json_fail(r, "unexpected value");
}

static int json_skip_value(struct json_reader *r, int depth) {
    json_skip_space(r);
    switch (json_peek(r)) {
        case '{': return json_skip_container(r, depth, '{', '}');
        case '[': return json_skip_container(r, depth, '[', ']');
        case '"': return json_string(r, NULL, 0);
        case 't': return json_skip_literal(r, "true");
        case 'f': return json_skip_literal(r, "false");
        case 'n': return json_skip_literal(r, "null");
        default: return json_skip_number(r);
    }
}

/* Iterates over an object's members: call with *first=1, then per member. */
static int json_next_key(struct json_reader *r, int *first, char *key, size_t capacity, int *done) {
    json_skip_space(r);
    if (*first) {
        *first = 0;
        if (json_peek(r) == '}') {
            r->pos++;
            *done = 1;
            return 1;
        }
    } else {
        if (json_peek(r) == '}') {
            r->pos++;
            *done = 1;
            return 1;
        }
        if (!json_expect(r, ',', "expected ',' or '}'")) return 0;
    }
    *done = 0;
    return json_string(r, key, capacity) && json_expect(r, ':', "expected ':' after key");
}

enum gpu_field {
    FIELD_INDEX = 1 << 0,
    FIELD_UUID = 1 << 1,
    FIELD_NAME = 1 << 2,
    FIELD_MEMORY_TOTAL = 1 << 3,
    FIELD_MEMORY_USED = 1 << 4,
    FIELD_COMPUTE_CAPABILITY = 1 << 5,
    FIELD_PCI_BUS_ID = 1 << 6,
    REQUIRED_GPU_FIELDS = (1 << 7) - 1
};

static const char *const required_gpu_field_names[] = {
    "index", "uuid", "name", "memory_total_mib", "memory_used_mib", "compute_capability", "pci_bus_id",
};

static int read_optional_uint(struct json_reader *r, unsigned int *out, unsigned int maximum) {
    unsigned long long value;
    if (!json_uint(r, &value)) return 0;
    if (value > maximum) return json_fail(r, "value out of range");
    *out = (unsigned int)value;
    return 1;
}

static int read_gpu_member(struct json_reader *r, const char *key, struct nvmlDevice_st *gpu, unsigned int *seen) {
    unsigned long long number;
    char text[TEXT_FIELD_SIZE];
    if (strcmp(key, "index") == 0) {
        if (!json_uint(r, &number)) return 0;
        gpu->profile_index = (unsigned int)number;
        *seen |= FIELD_INDEX;
    } else if (strcmp(key, "uuid") == 0) {
        if (!json_string(r, gpu->uuid, sizeof gpu->uuid)) return 0;
        if (strncmp(gpu->uuid, "GPU-", 4) != 0) return json_fail(r, "uuid must start with GPU-");
        *seen |= FIELD_UUID;
    } else if (strcmp(key, "name") == 0) {
        if (!json_string(r, gpu->name, sizeof gpu->name)) return 0;
        *seen |= FIELD_NAME;
    } else if (strcmp(key, "memory_total_mib") == 0) {
        if (!json_uint(r, &gpu->memory_total_mib)) return 0;
        *seen |= FIELD_MEMORY_TOTAL;
    } else if (strcmp(key, "memory_used_mib") == 0) {
        if (!json_uint(r, &gpu->memory_used_mib)) return 0;
        *seen |= FIELD_MEMORY_USED;
    } else if (strcmp(key, "compute_capability") == 0) {
        if (!json_string(r, text, sizeof text)) return 0;
        if (!parse_major_minor(text, &gpu->cc_major, &gpu->cc_minor))
            return json_fail(r, "compute_capability must look like \"8.9\"");
        *seen |= FIELD_COMPUTE_CAPABILITY;
    } else if (strcmp(key, "pci_bus_id") == 0) {
        unsigned int pci[4];
        if (!json_string(r, gpu->pci_bus_id, sizeof gpu->pci_bus_id)) return 0;
        if (!parse_pci_bus_id(gpu->pci_bus_id, pci))
            return json_fail(r, "pci_bus_id must look like \"00000000:01:00.0\"");
        gpu->pci_domain = pci[0];
        gpu->pci_bus = pci[1];
        gpu->pci_device = pci[2];
        gpu->pci_function = pci[3];
        *seen |= FIELD_PCI_BUS_ID;
    } else if (strcmp(key, "temperature_c") == 0) {
        return read_optional_uint(r, &gpu->temperature_c, 200);
    } else if (strcmp(key, "power_draw_w") == 0) {
        return read_optional_uint(r, &gpu->power_draw_w, 100000);
    } else if (strcmp(key, "power_limit_w") == 0) {
        return read_optional_uint(r, &gpu->power_limit_w, 100000);
    } else if (strcmp(key, "utilization_gpu_pct") == 0) {
        return read_optional_uint(r, &gpu->utilization_gpu_pct, 100);
    } else if (strcmp(key, "utilization_memory_pct") == 0) {
        return read_optional_uint(r, &gpu->utilization_memory_pct, 100);
    } else {
        return json_skip_value(r, 2);
    }
    return 1;
}

static int read_gpu(struct json_reader *r, unsigned int position, struct nvmlDevice_st *gpu) {
    char key[64];
    unsigned int seen = 0;
    int first = 1, done = 0;
    memset(gpu, 0, sizeof *gpu);
    gpu->temperature_c = 35;
    gpu->power_draw_w = 20;
    gpu->power_limit_w = 250;
    if (!json_expect(r, '{', "each item of \"gpus\" must be an object")) return 0;
    while (json_next_key(r, &first, key, sizeof key, &done) && !done) {
        if (!read_gpu_member(r, key, gpu, &seen)) return 0;
    }
    if (!done) return 0;
    for (unsigned int bit = 0; bit < 7; bit++) {
        if (!(seen & (1u << bit))) {
            char message[96];
            snprintf(message, sizeof message, "gpus[%u] lacks \"%s\"", position, required_gpu_field_names[bit]);
            return json_fail(r, message);
        }
    }
    if (gpu->profile_index != position) return json_fail(r, "gpus[N].index must equal N (list GPUs in index order)");
    if (gpu->memory_total_mib == 0) return json_fail(r, "memory_total_mib must be positive");
    if (gpu->memory_used_mib > gpu->memory_total_mib)
        return json_fail(r, "memory_used_mib must not exceed memory_total_mib");
    return 1;
}

static int read_gpu_list(struct json_reader *r, struct gpu_profile *profile) {
    if (!json_expect(r, '[', "\"gpus\" must be a list")) return 0;
    json_skip_space(r);
    if (json_peek(r) == ']') {
        r->pos++;
        return 1;
    }
    for (;;) {
        if (profile->gpu_count >= MAX_GPUS) return json_fail(r, "too many GPUs (at most 64)");
        if (!read_gpu(r, profile->gpu_count, &profile->gpus[profile->gpu_count])) return 0;
        profile->gpu_count++;
        json_skip_space(r);
        if (json_peek(r) == ',') {
            r->pos++;
            continue;
        }
        return json_expect(r, ']', "expected ',' or ']' in \"gpus\"");
    }
}

static int read_profile(struct json_reader *r, struct gpu_profile *profile) {
    char key[64], cuda_version[TEXT_FIELD_SIZE] = "";
    int first = 1, done = 0, have_gpus = 0;
    memset(profile, 0, sizeof *profile);
    if (!json_expect(r, '{', "the profile must be a JSON object")) return 0;
    while (json_next_key(r, &first, key, sizeof key, &done) && !done) {
        int ok;
        if (strcmp(key, "driver_version") == 0) {
            ok = json_string(r, profile->driver_version, sizeof profile->driver_version);
        } else if (strcmp(key, "cuda_version") == 0) {
            ok = json_string(r, cuda_version, sizeof cuda_version);
        } else if (strcmp(key, "gpus") == 0) {
            ok = read_gpu_list(r, profile);
            have_gpus = 1;
        } else {
            ok = json_skip_value(r, 1);
        }
        if (!ok) return 0;
    }
    if (!done) return 0;
    json_skip_space(r);
    if (r->pos != r->length) return json_fail(r, "unexpected text after the profile object");
    if (profile->driver_version[0] == '\0') return json_fail(r, "\"driver_version\" is missing or empty");
    if (!parse_major_minor(cuda_version, &profile->cuda_major, &profile->cuda_minor))
        return json_fail(r, "\"cuda_version\" is missing or does not look like \"12.4\"");
    if (!have_gpus) return json_fail(r, "\"gpus\" is missing");
    return 1;
}

/* ------------------------------------------------------------------ */
/* Loading the profile and selecting visible GPUs                      */
/* ------------------------------------------------------------------ */

static const char *profile_path(void) {
    const char *path = getenv("LPFLEET_LAB_GPU_PROFILE");
    return (path && *path) ? path : DEFAULT_PROFILE_PATH;
}

static nvmlReturn_t read_file(const char *path, char **text, size_t *length) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return NVML_ERROR_DRIVER_NOT_LOADED;
        fprintf(stderr, "lpfleet-lab libnvidia-ml: cannot open GPU profile %s: %s\n", path, strerror(errno));
        return errno == EACCES ? NVML_ERROR_NO_PERMISSION : NVML_ERROR_UNKNOWN;
    }
    char *buffer = malloc(MAX_PROFILE_BYTES + 1);
    size_t used = 0;
    ssize_t got = 0;
    if (!buffer) {
        close(fd);
        return NVML_ERROR_MEMORY;
    }
    while (used <= MAX_PROFILE_BYTES && (got = read(fd, buffer + used, MAX_PROFILE_BYTES + 1 - used)) > 0) {
        used += (size_t)got;
    }
    close(fd);
    if (got < 0 || used > MAX_PROFILE_BYTES) {
        fprintf(stderr, "lpfleet-lab libnvidia-ml: cannot read GPU profile %s: %s\n", path,
                got < 0 ? strerror(errno) : "file larger than 1 MiB");
        free(buffer);
        return NVML_ERROR_UNKNOWN;
    }
    buffer[used] = '\0';
    *text = buffer;
    *length = used;
    return NVML_SUCCESS;
}

static nvmlReturn_t load_profile(struct gpu_profile *profile) {
    const char *path = profile_path();
    char *text = NULL;
    size_t length = 0;
    nvmlReturn_t status = read_file(path, &text, &length);
    if (status != NVML_SUCCESS) return status;
    struct json_reader reader = {text, length, 0, ""};
    int ok = read_profile(&reader, profile);
    free(text);
    if (!ok) {
        fprintf(stderr, "lpfleet-lab libnvidia-ml: invalid GPU profile %s: %s\n", path, reader.error);
        return NVML_ERROR_UNKNOWN;
    }
    return NVML_SUCCESS;
}

static int token_selects(const char *token, const struct nvmlDevice_st *gpu, unsigned int position) {
    if (is_digit(token[0])) {
        unsigned long long index = 0;
        for (const char *c = token; *c; c++) {
            if (!is_digit(*c)) return 0;
            index = index * 10 + (unsigned long long)(*c - '0');
            if (index > MAX_GPUS) return 0;
        }
        return index == position;
    }
    return equals_ignore_case(token, gpu->uuid);
}

/* Whether the comma-separated list names the GPU at this position (by index or UUID). */
static int list_selects(const char *list, const struct nvmlDevice_st *gpu, unsigned int position) {
    char token[TEXT_FIELD_SIZE];
    const char *c = list;
    while (*c) {
        size_t n = 0;
        while (*c == ' ' || *c == '\t') c++;
        while (*c && *c != ',') {
            if (n + 1 < sizeof token) token[n++] = *c;
            c++;
        }
        while (n > 0 && (token[n - 1] == ' ' || token[n - 1] == '\t')) n--;
        token[n] = '\0';
        if (n > 0 && token_selects(token, gpu, position)) return 1;
        if (*c == ',') c++;
    }
    return 0;
}

/*
 * Keeps the GPUs that the environment variable selects, in index order.
 * Unset or "all": every GPU; "none" or "void": none; empty: none when
 * empty_means_none (CUDA's rule), every GPU otherwise.
 */
static unsigned int select_devices(const char *variable, int empty_means_none, struct nvmlDevice_st *gpus,
                                   unsigned int count) {
    const char *value = getenv(variable);
    unsigned int kept = 0;
    if (value == NULL) return count;
    while (*value == ' ') value++;
    if (*value == '\0') return empty_means_none ? 0 : count;
    if (equals_ignore_case(value, "all")) return count;
    if (equals_ignore_case(value, "none") || equals_ignore_case(value, "void")) return 0;
    for (unsigned int i = 0; i < count; i++) {
        if (list_selects(value, &gpus[i], i)) gpus[kept++] = gpus[i];
    }
    return kept;
}

static void publish_visible_devices(const struct gpu_profile *profile) {
    unsigned int count = profile->gpu_count;
    memcpy(g_visible, profile->gpus, sizeof(struct nvmlDevice_st) * count);
    count = select_devices("NVIDIA_VISIBLE_DEVICES", 0, g_visible, count);
    count = select_devices("CUDA_VISIBLE_DEVICES", 1, g_visible, count);
    for (unsigned int i = 0; i < count; i++) g_visible[i].visible_index = i;
    g_visible_count = count;
}

/* ------------------------------------------------------------------ */
/* Argument checks shared by the API functions                         */
/* ------------------------------------------------------------------ */

static int is_initialized(void) { return __atomic_load_n(&g_init_count, __ATOMIC_ACQUIRE) > 0; }

static nvmlReturn_t check_device(nvmlDevice_t device) {
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    uintptr_t first = (uintptr_t)&g_visible[0];
    uintptr_t address = (uintptr_t)device;
    if (device == NULL || address < first) return NVML_ERROR_INVALID_ARGUMENT;
    uintptr_t offset = address - first;
    if (offset % sizeof(struct nvmlDevice_st) != 0 || offset / sizeof(struct nvmlDevice_st) >= g_visible_count)
        return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_text(char *destination, unsigned int length, const char *text) {
    if (destination == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    size_t needed = strlen(text) + 1;
    if (length < needed) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(destination, text, needed);
    return NVML_SUCCESS;
}

#define CHECK(expression)                            \
    do {                                             \
        nvmlReturn_t check_status_ = (expression);   \
        if (check_status_ != NVML_SUCCESS) return check_status_; \
    } while (0)

#define CHECK_DEVICE_AND(device, pointer)                              \
    do {                                                               \
        CHECK(check_device(device));                                   \
        if ((pointer) == NULL) return NVML_ERROR_INVALID_ARGUMENT;     \
    } while (0)

/* ------------------------------------------------------------------ */
/* Initialisation and system queries                                   */
/* ------------------------------------------------------------------ */

NVML_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags; /* NO_GPUS and NO_ATTACH change nothing here: init never fails for lack of GPUs */
    nvmlReturn_t status = NVML_SUCCESS;
    lock_state();
    if (g_init_count == 0) {
        status = load_profile(&g_profile);
        if (status == NVML_SUCCESS) publish_visible_devices(&g_profile);
    }
    if (status == NVML_SUCCESS) __atomic_add_fetch(&g_init_count, 1, __ATOMIC_RELEASE);
    unlock_state();
    return status;
}

NVML_API nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

NVML_API nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

NVML_API nvmlReturn_t nvmlShutdown(void) {
    nvmlReturn_t status = NVML_SUCCESS;
    lock_state();
    if (g_init_count == 0) {
        status = NVML_ERROR_UNINITIALIZED;
    } else {
        __atomic_sub_fetch(&g_init_count, 1, __ATOMIC_RELEASE);
    }
    unlock_state();
    return status;
}

NVML_API const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
        case NVML_SUCCESS: return "Success";
        case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
        case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
        case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
        case NVML_ERROR_NOT_FOUND: return "Not Found";
        case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
        case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
        case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
        case NVML_ERROR_TIMEOUT: return "Timeout";
        case NVML_ERROR_IRQ_ISSUE: return "Interrupt request issue";
        case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
        case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
        case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
        case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
        case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
        case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
        case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
        case NVML_ERROR_IN_USE: return "In use by another client";
        case NVML_ERROR_MEMORY: return "Insufficient Memory";
        case NVML_ERROR_NO_DATA: return "No data";
        case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED: return "ECC is enabled: the vGPU operation is not available";
        case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Ran out of critical resources, other than memory";
        case NVML_ERROR_FREQ_NOT_SUPPORTED: return "Requested frequency is not supported";
        case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
        case NVML_ERROR_DEPRECATED: return "Deprecated";
        case NVML_ERROR_NOT_READY: return "Not Ready";
        case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
        case NVML_ERROR_INVALID_STATE: return "Invalid state";
        default: return "Unknown Error";
    }
}

NVML_API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    return copy_text(version, length, g_profile.driver_version);
}

NVML_API nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    char text[TEXT_FIELD_SIZE + 16];
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    snprintf(text, sizeof text, "%u.%s", g_profile.cuda_major, g_profile.driver_version);
    return copy_text(version, length, text);
}

NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion) {
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    if (cudaDriverVersion == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *cudaDriverVersion = (int)(g_profile.cuda_major * 1000 + g_profile.cuda_minor * 10);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion) {
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

/* ------------------------------------------------------------------ */
/* Device enumeration                                                  */
/* ------------------------------------------------------------------ */

NVML_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    if (deviceCount == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *deviceCount = g_visible_count;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount) { return nvmlDeviceGetCount_v2(deviceCount); }

NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || index >= g_visible_count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &g_visible[index];
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    if (uuid == NULL || device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < g_visible_count; i++) {
        if (equals_ignore_case(uuid, g_visible[i].uuid)) {
            *device = &g_visible[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device) {
    unsigned int wanted[4];
    if (!is_initialized()) return NVML_ERROR_UNINITIALIZED;
    if (pciBusId == NULL || device == NULL || !parse_pci_bus_id(pciBusId, wanted)) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < g_visible_count; i++) {
        const struct nvmlDevice_st *gpu = &g_visible[i];
        if (gpu->pci_domain == wanted[0] && gpu->pci_bus == wanted[1] && gpu->pci_device == wanted[2] &&
            gpu->pci_function == wanted[3]) {
            *device = &g_visible[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByPciBusId_v2(pciBusId, device);
}

/* ------------------------------------------------------------------ */
/* Device queries                                                      */
/* ------------------------------------------------------------------ */

NVML_API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    CHECK(check_device(device));
    return copy_text(name, length, device->name);
}

NVML_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    CHECK(check_device(device));
    return copy_text(uuid, length, device->uuid);
}

NVML_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    CHECK_DEVICE_AND(device, index);
    *index = device->visible_index;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber) {
    CHECK_DEVICE_AND(device, minorNumber);
    *minorNumber = device->profile_index;
    return NVML_SUCCESS;
}

static unsigned long long mib_to_bytes(unsigned long long mib) { return mib * 1024ull * 1024ull; }

NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    CHECK_DEVICE_AND(device, memory);
    memory->total = mib_to_bytes(device->memory_total_mib);
    memory->used = mib_to_bytes(device->memory_used_mib);
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    CHECK_DEVICE_AND(device, memory);
    if (memory->version != NVML_MEMORY_V2_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory->total = mib_to_bytes(device->memory_total_mib);
    memory->reserved = 0;
    memory->used = mib_to_bytes(device->memory_used_mib);
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    CHECK(check_device(device));
    if (major == NULL || minor == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *major = (int)device->cc_major;
    *minor = (int)device->cc_minor;
    return NVML_SUCCESS;
}

static void fill_pci_common(nvmlDevice_t device, char legacy_bus_id[PCI_BUS_ID_LEGACY_SIZE], unsigned int *domain,
                            unsigned int *bus, unsigned int *dev, unsigned int *device_id, unsigned int *subsystem_id) {
    snprintf(legacy_bus_id, PCI_BUS_ID_LEGACY_SIZE, "%04X:%02X:%02X.%X", device->pci_domain & 0xFFFFu,
             device->pci_bus, device->pci_device, device->pci_function);
    *domain = device->pci_domain;
    *bus = device->pci_bus;
    *dev = device->pci_device;
    *device_id = NVIDIA_PCI_VENDOR_ID;
    *subsystem_id = 0;
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    CHECK_DEVICE_AND(device, pci);
    memset(pci, 0, sizeof *pci);
    fill_pci_common(device, pci->busIdLegacy, &pci->domain, &pci->bus, &pci->device, &pci->pciDeviceId,
                    &pci->pciSubSystemId);
    snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.%X", device->pci_domain, device->pci_bus,
             device->pci_device, device->pci_function);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_v2_t *pci) {
    CHECK_DEVICE_AND(device, pci);
    memset(pci, 0, sizeof *pci);
    fill_pci_common(device, pci->busId, &pci->domain, &pci->bus, &pci->device, &pci->pciDeviceId,
                    &pci->pciSubSystemId);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_v2_t *pci) {
    return nvmlDeviceGetPciInfo_v2(device, pci);
}

NVML_API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    CHECK_DEVICE_AND(device, utilization);
    utilization->gpu = device->utilization_gpu_pct;
    utilization->memory = device->utilization_memory_pct;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                               unsigned int *temp) {
    CHECK_DEVICE_AND(device, temp);
    if (sensorType != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
    *temp = device->temperature_c;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    CHECK_DEVICE_AND(device, power);
    *power = device->power_draw_w * 1000u;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit) {
    CHECK_DEVICE_AND(device, limit);
    *limit = device->power_limit_w * 1000u;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
    return nvmlDeviceGetPowerManagementLimit(device, limit);
}

/* No process ever runs on a stand-in GPU. */
NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                              void *infos) {
    (void)infos;
    CHECK_DEVICE_AND(device, infoCount);
    *infoCount = 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                              void *infos) {
    return nvmlDeviceGetComputeRunningProcesses_v3(device, infoCount, infos);
}
