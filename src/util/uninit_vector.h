// A std::vector whose resize() leaves new elements unwritten (default-initialised:
// indeterminate for float). For the forward pass's large buffers (KV cache,
// activations for a whole batch): the pages of a fresh allocation are then touched,
// and faulted in, only where the forward pass writes, so a short prompt does not
// pay for zeroing a cache sized for the whole context. Every element must be
// written before it is read.
#pragma once
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "util/huge_pages.h"

namespace minigpt {

template <class T>
struct NoInitAllocator : std::allocator<T> {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = NoInitAllocator<U>;
    };
    NoInitAllocator() = default;
    template <class U>
    NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
    // Buffers of several MiB get transparent huge pages (util/huge_pages.h): their
    // first touch is then ~500x cheaper per byte on our VMs.
    T* allocate(std::size_t n) {
        if (n > std::size_t(-1) / sizeof(T)) throw std::bad_alloc();
        if (n * sizeof(T) >= kHugeBufferBytes) return static_cast<T*>(allocate_huge_buffer(n * sizeof(T)));
        return std::allocator<T>::allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n * sizeof(T) >= kHugeBufferBytes) free_huge_buffer(p, n * sizeof(T));
        else std::allocator<T>::deallocate(p, n);
    }
    // Nothing to do for the trivially destructible elements these buffers hold; said
    // outright, because std::vector's destructor otherwise walked every element of
    // the KV cache (an empty loop GCC 12 kept: ~5 ms at the end of each command).
    template <class U>
    void destroy(U* p) noexcept {
        if constexpr (!std::is_trivially_destructible_v<U>) p->~U();
    }
    // construct() with no arguments default-initialises; with arguments, as usual.
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        if constexpr (sizeof...(Args) == 0) ::new (static_cast<void*>(p)) U;
        else ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

template <class T>
using UninitVector = std::vector<T, NoInitAllocator<T>>;

}  // namespace minigpt
