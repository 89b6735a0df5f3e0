{
  "targets": [
    {
      # Transcendental loops alone get -ffast-math, for glibc's vector exp/log/tanh (libmvec).
      "target_name": "p2p_fastmath",
      "type": "static_library",
      "sources": ["src/transcendental.cc"],
      "cflags!": ["-O2", "-O0"],
      "cflags_cc!": ["-O2", "-O0"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=x86-64-v3", "-mtune=generic", "-fopenmp", "-ffast-math", "-fPIC"]
    },
    {
      "target_name": "pix2pix_native",
      "dependencies": ["p2p_fastmath"],
      "sources": [
        "src/addon.cc",
        "src/conv.cc",
        "src/eltwise.cc",
        "src/peak.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=x86-64-v3", "-mtune=generic", "-fopenmp", "-fno-math-errno", "-fexceptions"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-lmvec", "-fopenmp"]
    }
  ]
}
