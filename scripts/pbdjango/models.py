# -*- coding: utf-8 -*-
"""Models with the field types a cached Django object usually holds."""
from django.db import models


class Article(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
    price = models.DecimalField(max_digits=8, decimal_places=2)
    published = models.DateTimeField()
    day = models.DateField()
    views = models.BigIntegerField()
    blob = models.BinaryField()

    class Meta:
        app_label = 'pbdjango'
