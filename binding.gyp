{
  "targets": [
    {
      "target_name": "kong_watcher",
      "sources": [
        "native/binding.cc",
        "native/args.cc",
        "native/batch_sink.cc",
        "native/capture.cc",
        "native/drain_thread.cc",
        "native/errors.cc",
        "native/log_sink.cc",
        "native/probes.cc"
      ],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include\")",
        "bpf"
      ],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "<!@(pkg-config --cflags libbpf)"],
      "libraries": ["<!@(pkg-config --libs libbpf)", "-lelf", "-lz"]
    }
  ]
}
