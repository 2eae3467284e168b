"""In and out: the file codec and its schema checks, PyTorch both ways."""
