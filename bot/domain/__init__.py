"""Pure rules of the product: no I/O, no Bot Framework, no database."""
