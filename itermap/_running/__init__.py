"""Running maps: iterate, parallel in time (Newton), the tangent steppers, the threads and
the linear algebra under them."""
