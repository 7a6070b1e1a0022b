// A buffer in a backend's memory that grows to the largest size asked of it and never shrinks: the memory plan of
// buffers whose size follows the batch (continual learning's batches change length at every step, and a fresh
// allocation is zeroed and, on the CPU, touched page by page). Growing loses the contents: each user writes a
// buffer before it reads it. Released with its owner.
#pragma once
#include <cstddef>

template <class Backend, class T>
class GrowingBuffer {
public:
    GrowingBuffer() = default;
    GrowingBuffer(const GrowingBuffer&) = delete;
    GrowingBuffer& operator=(const GrowingBuffer&) = delete;
    ~GrowingBuffer() { release(); }

    // At least `count` elements; a larger request replaces the allocation (the old one is released first).
    T* reserve(size_t count) {
        if (count > capacity_) {
            release();
            data_ = Backend::template allocate<T>(count);
            capacity_ = count;
        }
        return data_;
    }
    void release() {
        Backend::release(data_);
        data_ = nullptr;
        capacity_ = 0;
    }
    T* data() const { return data_; }
    size_t capacity() const { return capacity_; }

private:
    T* data_ = nullptr;
    size_t capacity_ = 0;
};
