// SPLAT's XLA FFI launch handler: runs a registered PTX kernel on XLA's stream (issue 13).
//
// Why a handler of our own (docs/runtime.md, "The JAX primitive"): jaxlib's GPU kernel-call
// handler keys its cache by the whole zlib-compressed call description, PTX included (50 KB
// for a SPLAT kernel), and hashes and compares that key on every call; its outputs must also
// come last in the kernel's parameter list, so SPLAT's o/lse had to be aliased to filled
// operands (two more kernels). Here the call names its kernel by a content hash registered
// once from Python, and a small integer table says which buffer or constant each PTX
// parameter takes, in any order.
//
// The parameter table ("params" attribute) is a flat int64 list of (kind, value) pairs, one
// pair per PTX parameter, in the kernel's order:
//   kind 0: the device pointer of buffer #value (the call's operands, then its results);
//   kind 1: value as a 64-bit integer;  kind 2: value as a 32-bit integer;
//   kind 3: the low 32 bits of value, a float's bit pattern (passed as f32).
// Every index and size is checked on each call (a handful of compares): a bad table is an
// FFI error, never an out-of-bounds read.
//
// The CUDA driver is reached with dlopen("libcuda.so.1"), so the library needs no CUDA
// toolkit to build and no libcuda to load (a call without a driver fails with an error).

#include <dlfcn.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// ---------------------------------------------------------------------------- CUDA driver
// The few driver entry points used, declared with the driver's C types (opaque pointers, int
// results); the values below are from cuda.h and stable across driver versions.
using CUresult = int;
using CUcontext = void*;
using CUmodule = void*;
using CUfunction = void*;
using CUstream = void*;
constexpr int kFuncAttrMaxDynamicSharedBytes = 8;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
constexpr int kCaptureStatusActive = 1;            // CU_STREAM_CAPTURE_STATUS_ACTIVE
constexpr uint32_t kMaxStaticSharedBytes = 48 * 1024;

struct Driver {
  CUresult (*ModuleLoadData)(CUmodule*, const void*) = nullptr;
  CUresult (*ModuleGetFunction)(CUfunction*, CUmodule, const char*) = nullptr;
  CUresult (*FuncSetAttribute)(CUfunction, int, int) = nullptr;
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, CUstream, void**, void**) = nullptr;
  CUresult (*StreamGetCtx)(CUstream, CUcontext*) = nullptr;
  CUresult (*StreamIsCapturing)(CUstream, int*) = nullptr;
  CUresult (*CtxGetCurrent)(CUcontext*) = nullptr;
  CUresult (*CtxPushCurrent)(CUcontext) = nullptr;
  CUresult (*CtxPopCurrent)(CUcontext*) = nullptr;
  CUresult (*GetErrorName)(CUresult, const char**) = nullptr;
  std::string error;  // why the driver is unusable, empty when it is

  Driver() {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = dlerror();
      error = std::string("cannot load libcuda.so.1: ") + (why ? why : "unknown reason");
      return;
    }
    bool ok = true;
    auto get = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (fn == nullptr) {
        ok = false;
        error = std::string("libcuda.so.1 has no ") + name;
      }
    };
    get(ModuleLoadData, "cuModuleLoadData");
    get(ModuleGetFunction, "cuModuleGetFunction");
    get(FuncSetAttribute, "cuFuncSetAttribute");
    get(LaunchKernel, "cuLaunchKernel");
    get(StreamGetCtx, "cuStreamGetCtx");
    get(StreamIsCapturing, "cuStreamIsCapturing");
    get(CtxGetCurrent, "cuCtxGetCurrent");
    get(CtxPushCurrent, "cuCtxPushCurrent_v2");
    get(CtxPopCurrent, "cuCtxPopCurrent_v2");
    get(GetErrorName, "cuGetErrorName");
    if (!ok) LaunchKernel = nullptr;
  }

  std::string Describe(const char* call, CUresult rc) const {
    const char* name = nullptr;
    if (GetErrorName == nullptr || GetErrorName(rc, &name) != 0 || name == nullptr) {
      name = "unknown CUresult";
    }
    return std::string("splat: ") + call + " failed: " + name + " (" + std::to_string(rc) + ")";
  }
};

const Driver& GetDriver() {
  static const Driver* driver = new Driver();  // never destroyed: kernels may run at exit
  return *driver;
}

// ---------------------------------------------------------------------------- kernels
// A registered kernel: its PTX, entry name, CTA size and dynamic shared memory, and the
// function loaded in each CUDA context that ran it (never unloaded: an executable compiled
// with it may run until the process ends).
struct Kernel {
  std::string name;
  std::string ptx;  // NUL-terminated by std::string, as cuModuleLoadData needs
  uint32_t block_threads = 0;
  uint32_t shared_bytes = 0;
  std::mutex mutex;
  std::vector<std::pair<CUcontext, CUfunction>> functions;  // a context or two: a linear scan

  ffi::ErrorOr<CUfunction> FunctionFor(const Driver& cu, CUcontext context) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& [ctx, fn] : functions) {
      if (ctx == context) return fn;
    }
    if (CUresult rc = cu.CtxPushCurrent(context)) {
      return ffi::Unexpected(ffi::Error::Internal(cu.Describe("cuCtxPushCurrent", rc)));
    }
    CUmodule module = nullptr;
    CUfunction fn = nullptr;
    CUresult rc = cu.ModuleLoadData(&module, ptx.c_str());
    const char* call = "cuModuleLoadData";
    if (rc == 0) {
      call = "cuModuleGetFunction";
      rc = cu.ModuleGetFunction(&fn, module, name.c_str());
    }
    if (rc == 0 && shared_bytes > kMaxStaticSharedBytes) {
      call = "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)";
      rc = cu.FuncSetAttribute(fn, kFuncAttrMaxDynamicSharedBytes,
                               static_cast<int>(shared_bytes));
    }
    CUcontext popped = nullptr;
    cu.CtxPopCurrent(&popped);
    if (rc != 0) return ffi::Unexpected(ffi::Error::Internal(cu.Describe(call, rc)));
    functions.emplace_back(context, fn);
    return fn;
  }
};

std::shared_mutex registry_mutex;
auto& registry = *new std::unordered_map<std::string, std::unique_ptr<Kernel>>();

Kernel* FindKernel(std::string_view key) {
  std::shared_lock<std::shared_mutex> lock(registry_mutex);
  auto it = registry.find(std::string(key));
  return it == registry.end() ? nullptr : it->second.get();
}

// The context to load into: the stream's, except during graph capture, where
// cuStreamGetCtx is not reliable and the current context is the capturing one.
ffi::ErrorOr<CUcontext> StreamContext(const Driver& cu, CUstream stream) {
  int capture = 0;
  if (CUresult rc = cu.StreamIsCapturing(stream, &capture)) {
    return ffi::Unexpected(ffi::Error::Internal(cu.Describe("cuStreamIsCapturing", rc)));
  }
  CUcontext context = nullptr;
  CUresult rc = capture == kCaptureStatusActive ? cu.CtxGetCurrent(&context)
                                                : cu.StreamGetCtx(stream, &context);
  if (rc != 0) return ffi::Unexpected(ffi::Error::Internal(cu.Describe("cuStreamGetCtx", rc)));
  if (context == nullptr) return ffi::Unexpected(ffi::Error::Internal("splat: no CUDA context"));
  return context;
}

constexpr size_t kMaxParams = 256;  // PTX parameters of one launch (SPLAT's use at most ~80)
constexpr size_t kMaxBuffers = 64;

ffi::Error Launch(CUstream stream, ffi::RemainingArgs args, ffi::RemainingRets rets,
                  std::string_view kernel_key, ffi::Span<const int64_t> grid,
                  ffi::Span<const int64_t> params) {
  const Driver& cu = GetDriver();
  if (cu.LaunchKernel == nullptr) return ffi::Error::Internal("splat: " + cu.error);
  Kernel* kernel = FindKernel(kernel_key);
  if (kernel == nullptr) {
    return ffi::Error(ffi::ErrorCode::kNotFound,
                      "splat: kernel " + std::string(kernel_key) +
                          " is not registered in this process (splat.jax registers it when "
                          "a program using it is lowered)");
  }
  if (grid.size() != 3 || grid[0] < 1 || grid[1] < 1 || grid[2] < 1 ||
      grid[0] > 0x7fffffff || grid[1] > 65535 || grid[2] > 65535) {
    return ffi::Error::InvalidArgument("splat: grid must be 3 positive sizes within CUDA's limits");
  }
  if (params.size() % 2 != 0 || params.size() / 2 > kMaxParams) {
    return ffi::Error::InvalidArgument("splat: params must be at most 256 (kind, value) pairs");
  }

  // The buffers' device pointers: operands, then results.
  size_t nargs = args.size(), nbufs = args.size() + rets.size();
  if (nbufs > kMaxBuffers) return ffi::Error::InvalidArgument("splat: too many buffers");
  std::array<void*, kMaxBuffers> buffers;
  for (size_t i = 0; i < nargs; ++i) {
    auto buffer = args.get<ffi::AnyBuffer>(i);
    if (!buffer) return buffer.error();
    buffers[i] = buffer->untyped_data();
  }
  for (size_t i = 0; i < rets.size(); ++i) {
    auto buffer = rets.get<ffi::AnyBuffer>(i);
    if (!buffer) return buffer.error();
    buffers[nargs + i] = (*buffer)->untyped_data();
  }

  // Each parameter's value, and the pointer array cuLaunchKernel reads them through.
  size_t nparams = params.size() / 2;
  std::array<uint64_t, kMaxParams> values;
  std::array<void*, kMaxParams> pointers;
  for (size_t i = 0; i < nparams; ++i) {
    int64_t kind = params[2 * i], value = params[2 * i + 1];
    switch (kind) {
      case 0:
        if (value < 0 || static_cast<size_t>(value) >= nbufs) {
          return ffi::Error::InvalidArgument("splat: parameter " + std::to_string(i) +
                                             " names buffer " + std::to_string(value) +
                                             " of " + std::to_string(nbufs));
        }
        std::memcpy(&values[i], &buffers[value], sizeof(void*));
        break;
      case 1:
        std::memcpy(&values[i], &value, sizeof(int64_t));
        break;
      case 2:
      case 3: {  // 4-byte parameters: the low 32 bits (an int32, or a float's bits)
        uint32_t low = static_cast<uint32_t>(static_cast<uint64_t>(value));
        std::memcpy(&values[i], &low, sizeof(low));
        break;
      }
      default:
        return ffi::Error::InvalidArgument("splat: parameter " + std::to_string(i) +
                                           " has unknown kind " + std::to_string(kind));
    }
    pointers[i] = &values[i];
  }

  auto context = StreamContext(cu, stream);
  if (!context) return context.error();
  auto function = kernel->FunctionFor(cu, *context);
  if (!function) return function.error();
  CUresult rc = cu.LaunchKernel(*function, static_cast<unsigned>(grid[0]),
                                static_cast<unsigned>(grid[1]), static_cast<unsigned>(grid[2]),
                                kernel->block_threads, 1, 1, kernel->shared_bytes, stream,
                                pointers.data(), nullptr);
  if (rc != 0) return ffi::Error::Internal(cu.Describe("cuLaunchKernel", rc));
  return ffi::Error::Success();
}

}  // namespace

// The launch handler: splat.jax registers it as the FFI target "splat_launch" (CUDA).
XLA_FFI_DEFINE_HANDLER_SYMBOL(SplatLaunch, Launch,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<CUstream>>()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<std::string_view>("kernel")
                                  .Attr<ffi::Span<const int64_t>>("grid")
                                  .Attr<ffi::Span<const int64_t>>("params"));

extern "C" {

// The layout of this library's interface; splat.jax refuses a library of another version.
__attribute__((visibility("default"))) int splat_jax_ffi_abi_version() { return 1; }

// Registers kernel `key` (a content hash chosen by the caller). Returns 0 when registered or
// already registered with the same content, 1 when `key` names different content, 2 for
// bad arguments. Thread-safe.
__attribute__((visibility("default"))) int splat_jax_ffi_register(
    const char* key, const char* name, const char* ptx, uint64_t ptx_len,
    uint32_t block_threads, uint32_t shared_bytes) {
  if (key == nullptr || name == nullptr || ptx == nullptr || ptx_len == 0 ||
      block_threads == 0 || block_threads > 1024 || block_threads % 32 != 0) {
    return 2;
  }
  auto kernel = std::make_unique<Kernel>();
  kernel->name = name;
  kernel->ptx.assign(ptx, ptx_len);
  kernel->block_threads = block_threads;
  kernel->shared_bytes = shared_bytes;
  std::unique_lock<std::shared_mutex> lock(registry_mutex);
  auto [it, inserted] = registry.emplace(key, nullptr);
  if (inserted) {
    it->second = std::move(kernel);
    return 0;
  }
  const Kernel& old = *it->second;
  bool same = old.name == kernel->name && old.ptx == kernel->ptx &&
              old.block_threads == block_threads && old.shared_bytes == shared_bytes;
  return same ? 0 : 1;
}

}  // extern "C"
