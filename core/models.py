from django.db import models


class BaseModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class BenchReferenceRow(models.Model):
    """Target of the reference endpoint in bench/intake.py (the ceiling of one DRF write here).
    Routed only when DJANGO_BENCH_ENDPOINTS=true."""

    name = models.CharField(max_length=100)
    email = models.EmailField()
    company = models.CharField(max_length=100)
    score = models.IntegerField()

    def __str__(self) -> str:
        return self.name
