"""Data access: dataset loaders, field layouts, and the SPI / psycopg2 batch readers."""
