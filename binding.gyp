{
  "targets": [
    {
      "target_name": "kong_watcher",
      "sources": ["<!@(ls -1 native/*.cc native/*/*.cc)"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include\")",
        "bpf",
        "native"
      ],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "<!@(pkg-config --cflags libbpf)"],
      "libraries": ["<!@(pkg-config --libs libbpf)", "-lelf", "-lz", "-lnghttp2"]
    }
  ]
}
