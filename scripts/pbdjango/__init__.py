"""A Django app whose model instances cross Python versions through picklebridge
(scripts/check_django.py). Its source runs unchanged under Django 1.11 on CPython 2.7 and
Django 4.2 on CPython 3."""
